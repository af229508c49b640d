"""The one entry point: ``python -m fourfold experiment=<paper>/<preset> [key=value ...]``.

The composed config names its task (``cfg.task``, a dotted path to a function). The CLI imports it, calls
it with the config, and writes the flat dict of numbers it returns to ``metrics.json`` in the run folder,
next to Hydra's saved config. A task that raises leaves ``error.txt`` instead.
"""

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fourfold.core.environment import configure_environment
from fourfold.core.runs import (
    ERROR_FILE,
    current_run_dir,
    failed_jobs,
    validate_metrics,
    write_error,
    write_metrics,
)


def find_conf_dir(env: str | None = None, package_dir: Path | None = None) -> Path:
    """The Hydra config tree: ``$FOURFOLD_CONF`` if set, else the copy a wheel ships as ``fourfold/conf``,
    else the repository's top-level ``conf/`` (a checkout or an editable install). Raises when none exists."""
    package_dir = package_dir or Path(__file__).resolve().parents[1]
    if env:
        candidates = [Path(env)]
    else:
        candidates = [package_dir / "conf", package_dir.parents[1] / "conf"]
    for candidate in candidates:
        if (candidate / "config.yaml").is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"fourfold: no config tree (conf/config.yaml) found; looked in {looked}. Point FOURFOLD_CONF at the "
        "conf/ folder of a fourfold checkout (export FOURFOLD_CONF=/path/to/fourfold/conf) or install from "
        "a wheel, which ships it."
    )


try:
    CONF_DIR = find_conf_dir(os.environ.get("FOURFOLD_CONF"))
except FileNotFoundError as _missing:
    # Reported by main() as a one-line error; importing the module (for its helpers) still works.
    CONF_DIR, _CONF_ERROR = Path("conf"), str(_missing)
else:
    _CONF_ERROR = None

log = logging.getLogger("fourfold")

STOPPED_STATUS = 128 + 15  # what a shell reports for a process ended by SIGTERM


class UsageError(ValueError):
    """A command line or config that cannot run; the message says what to change."""


def resolve_task(dotted: str) -> Callable[[DictConfig], dict]:
    """Import ``package.module.function`` and return the function."""
    module_name, _, attr = str(dotted).rpartition(".")
    if not module_name:
        raise UsageError(f"task must be a dotted path like 'fourfold.scoring.run.main', got {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UsageError(f"task {dotted!r}: cannot import module {module_name!r} ({err})") from err
    task = getattr(module, attr, None)
    if not callable(task):
        raise UsageError(f"task {dotted!r}: module {module_name!r} has no function {attr!r}")
    return task


def run_task(cfg: DictConfig) -> dict[str, float]:
    """Call the configured task and record its metrics (or its traceback) in the current run folder."""
    run_dir = current_run_dir()
    try:
        task = resolve_task(cfg.task)
        metrics = validate_metrics(task(cfg))
    except BaseException as err:
        write_error(run_dir, traceback.format_exc())
        if isinstance(err, SystemExit) and not err.code:
            # Lightning answers SIGTERM by raising SystemExit() (status 0): no metrics, so not a success.
            log.error(
                "stopped before it finished (%s); the same command with hydra.run.dir=%s resumes it from its "
                "last checkpoint",
                type(err).__name__,
                run_dir,
            )
            raise SystemExit(STOPPED_STATUS) from err
        raise
    if _global_rank() != 0:
        return metrics  # under DDP every process runs the task; the first one records the run
    path = write_metrics(run_dir, metrics)
    # A rerun in the folder of a failed or killed attempt succeeded: that attempt's traceback is history.
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    log.info("metrics written to %s", path)
    return metrics


def _global_rank() -> int:
    """This process's rank in a distributed run (0 outside one)."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank()
    return int(os.environ.get("RANK", 0)) or int(os.environ.get("LOCAL_RANK", 0))


def _is_group(key: str, search_dirs: Sequence[Path] = ()) -> bool:
    roots = [CONF_DIR, *search_dirs]
    return key == "experiment" or "/" in key or any((Path(root) / key).is_dir() for root in roots)


def available_presets(search_dirs: Sequence[Path] = ()) -> list[str]:
    """Every ``<paper>/<preset>`` under ``conf/experiment`` (and ``experiment/`` of extra search dirs)."""
    presets = set()
    for root in [CONF_DIR, *search_dirs]:
        base = Path(root) / "experiment"
        presets.update(p.relative_to(base).with_suffix("").as_posix() for p in base.glob("**/*.yaml"))
    return sorted(presets)


def _preset_listing(search_dirs: Sequence[Path]) -> str:
    presets = available_presets(search_dirs)
    return "\n".join(f"  experiment={p}" for p in presets) if presets else "  (none yet)"


def _search_dirs(parsed) -> list[Path]:
    dirs = []
    for override in parsed:
        if override.key_or_group == "hydra.searchpath":
            value = override.value()
            for entry in value if isinstance(value, list) else [value]:
                if str(entry).startswith("file://"):
                    dirs.append(Path(str(entry)[len("file://") :]))
    return dirs


def check_command_line(args: Sequence[str]) -> None:
    """Fail early, listing the valid choices, on a missing or unknown preset or an unknown config key.

    Hydra does not list nested presets (``experiment=<paper>/<preset>``) and only says "not in struct"
    for a misspelt key, so this checks both against the config tree first. Keys added on purpose
    (``+key=value``) and Hydra's own settings are left alone; syntax errors are left to Hydra.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    tokens = [a for a in args if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(tokens)
    except Exception:
        return
    search_dirs = _search_dirs(parsed)
    experiments = [o for o in parsed if o.key_or_group == "experiment"]
    if not experiments:
        raise UsageError(f"choose an experiment preset, one of:\n{_preset_listing(search_dirs)}")
    valid = available_presets(search_dirs)
    for override in experiments:
        choices = (
            list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
        )
        for choice in choices:
            if choice not in valid:
                raise UsageError(
                    f"unknown experiment '{choice}'. Valid presets:\n{_preset_listing(search_dirs)}"
                )

    compose_overrides, value_overrides = [], []
    for override in parsed:
        key = override.key_or_group
        first = next(override.sweep_string_iterator()) if override.is_sweep_override() else None
        line = f"{key}={first}" if first is not None else override.input_line
        if key.startswith("hydra.searchpath") or _is_group(key, search_dirs):
            compose_overrides.append(line)
        elif not (
            key.startswith("hydra") or override.is_add() or override.is_force_add() or override.is_delete()
        ):
            value_overrides.append((key, override.input_line))
    if not value_overrides:
        return
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=compose_overrides)
    except Exception:
        return  # an unknown group option: Hydra's own message lists the choices
    finally:
        GlobalHydra.instance().clear()
    missing = object()
    for key, line in value_overrides:
        if OmegaConf.select(cfg, key, default=missing, throw_on_missing=False) is missing:
            parent_key, _, _ = key.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
            where = f"under '{parent_key}'" if parent_key else "at the top level"
            keys = ", ".join(sorted(map(str, parent.keys()))) if isinstance(parent, DictConfig) else "(none)"
            raise UsageError(
                f"unknown config key '{key}' in override '{line}'.\n"
                f"Valid keys {where}: {keys}\n"
                f"To add a new key on purpose, write +{line}"
            )


USAGE = """usage: python -m fourfold experiment=<paper>/<preset> [key=value ...]
       python -m fourfold -m experiment=<paper>/<preset> seed=0,1,2 hydra/launcher=local

Runs one experiment preset; writes runs/<paper>/<preset>/<timestamp>/ with the exact config
(.hydra/config.yaml), metrics.json, logs and checkpoints.

Presets:
{presets}

Options:
  -m, --multirun     sweep over comma-separated values (seed=0,1,2), one run folder each
  --cfg job          print the composed config instead of running (with experiment=...)
  --help             this text; with experiment=... Hydra's help for that preset
  --hydra-help       Hydra's own options
Every knob of a paper is in conf/<paper>/base.yaml; trainer=cpu|gpu|ddp|ddp_cpu picks the Lightning setup;
hydra/launcher=local|submitit_local|slurm runs a multirun's jobs (README.md says which preset suits which).
"""


class SweepFolder(Callback):
    """Remembers, in the process that launches a multirun, the folder its jobs write to (conf/config.yaml
    registers it under ``hydra.callbacks``), so that ``main`` can name the jobs that failed."""

    folder: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        SweepFolder.folder = Path(config.hydra.sweep.dir)


def report_failed_jobs(sweep_dir: Path) -> str | None:
    """One message naming every job of the multirun in ``sweep_dir`` that left no metrics, or None."""
    failures = failed_jobs(sweep_dir)
    if not failures:
        return None
    jobs = len([p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()])
    lines = [f"multirun: {len(failures)} of {jobs} jobs failed (the others' results stay in {sweep_dir}):"]
    lines += [f"  {folder.name}: {why}" for folder, why in failures]
    lines.append("A failed job's traceback is in its error.txt; rerun it with hydra.run.dir=<its folder>.")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> dict[str, float]:
    configure_environment()
    return run_task(cfg)


def main() -> None:
    """Console entry point (``fourfold`` and ``python -m fourfold``)."""
    if _CONF_ERROR:
        print(_CONF_ERROR, file=sys.stderr)
        sys.exit(2)
    configure_environment()
    args = sys.argv[1:]
    if any(a in ("-h", "--help") for a in args) and not any(a.startswith("experiment=") for a in args):
        print(USAGE.format(presets=_preset_listing([])))
        return
    try:
        if not any(a in ("--hydra-help", "--info", "--version") or a.startswith("--info") for a in args):
            check_command_line(args)
    except UsageError as err:
        print(f"fourfold: {err}", file=sys.stderr)
        sys.exit(2)
    SweepFolder.folder = None
    try:
        _hydra_main()
    except SystemExit as err:
        # Hydra's sweeper raises the first failed job's error (the other jobs have run): name every one.
        message = report_failed_jobs(SweepFolder.folder) if SweepFolder.folder and err.code else None
        if message:
            print(message, file=sys.stderr)
        raise
