"""Run folders: where a run writes its metrics, and how reports find runs again.

A run folder is what Hydra creates (``runs/<paper>/<preset>/<timestamp>``): ``.hydra/config.yaml`` is the
exact config, ``metrics.json`` the flat dict of numbers the task returned, ``error.txt`` the traceback of
a task that raised (such a run has no ``metrics.json``).
"""

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fourfold.core.files import atomic_write_json, atomic_write_text

METRICS_FILE = "metrics.json"
ERROR_FILE = "error.txt"
CONFIG_FILE = Path(".hydra") / "config.yaml"


def current_run_dir() -> Path:
    """The folder of the Hydra run in progress (raises outside ``python -m fourfold``)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise RuntimeError("no Hydra run in progress: call this from a task started by `python -m fourfold`")
    return Path(HydraConfig.get().runtime.output_dir)


def validate_metrics(metrics: object) -> dict[str, float]:
    """Check that a task returned a flat mapping of names to real numbers; return it as floats.

    NaN is allowed (a metric that is undefined for the run), nested containers and strings are not.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"a task must return a flat dict of numbers, got {type(metrics).__name__}")
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metric {key!r} must be a real number, got {type(value).__name__}: {value!r}")
        clean[key] = float(value)
    return clean


def write_metrics(run_dir: str | Path, metrics: Mapping[str, float]) -> Path:
    """Validate ``metrics`` and write them to ``run_dir/metrics.json`` atomically."""
    clean = validate_metrics(metrics)
    # JSON has no NaN/inf; store them as null so every reader can parse the file.
    return atomic_write_json(
        Path(run_dir) / METRICS_FILE, {k: (v if math.isfinite(v) else None) for k, v in clean.items()}
    )


def write_error(run_dir: str | Path, traceback_text: str) -> Path:
    """Record a failed task's traceback in its run folder."""
    return atomic_write_text(Path(run_dir) / ERROR_FILE, traceback_text)


@dataclass(frozen=True)
class Run:
    """One run folder, loaded."""

    path: Path
    config: dict
    metrics: dict[str, float] | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.metrics is not None

    @property
    def paper(self) -> str | None:
        return self.config.get("paper")

    @property
    def preset(self) -> str | None:
        return self.config.get("preset")

    @property
    def seed(self) -> int | None:
        return self.config.get("seed")


def load_run(path: str | Path) -> Run:
    """Load a run folder's config, metrics (None if absent) and error text (None if absent)."""
    import json

    from omegaconf import OmegaConf

    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{path} is not a run folder: {CONFIG_FILE} is missing")
    config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=False)
    metrics = None
    if (path / METRICS_FILE).is_file():
        raw = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
        metrics = {k: (math.nan if v is None else float(v)) for k, v in raw.items()}
    error = (path / ERROR_FILE).read_text(encoding="utf-8") if (path / ERROR_FILE).is_file() else None
    return Run(path=path, config=config, metrics=metrics, error=error)


def find_runs(
    root: str | Path = "runs",
    paper: str | None = None,
    preset: str | None = None,
    *,
    include_failed: bool = False,
) -> list[Run]:
    """Every run folder under ``root`` (sorted by path), optionally filtered by paper and preset."""
    runs = []
    for config_path in sorted(Path(root).glob(f"**/{CONFIG_FILE.as_posix()}")):
        run = load_run(config_path.parent.parent)
        if paper is not None and run.paper != paper:
            continue
        if preset is not None and run.preset != preset:
            continue
        if run.ok or include_failed:
            runs.append(run)
    return runs


def runs_frame(runs: Iterable[Run], config_keys: Iterable[str] = ()):
    """A pandas DataFrame with one row per successful run: path, paper, preset, seed, chosen config keys
    (dotted, e.g. ``"scoring.n"``) and every metric."""
    import pandas as pd
    from omegaconf import OmegaConf

    rows = []
    for run in runs:
        if not run.ok:
            continue
        cfg = OmegaConf.create(run.config)
        row = {"path": str(run.path), "paper": run.paper, "preset": run.preset, "seed": run.seed}
        for key in config_keys:
            row[key] = OmegaConf.select(cfg, key, default=None)
        row.update(run.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def failed_jobs(sweep_dir: str | Path) -> list[tuple[Path, str]]:
    """The jobs of a multirun that left no ``metrics.json``: (job folder, why) in job order, where why is
    the last line of the job's ``error.txt`` or says that the job left none (killed before it could write)."""
    failures = []
    folders = [p.parent.parent for p in Path(sweep_dir).glob(f"*/{CONFIG_FILE.as_posix()}")]
    for folder in sorted(folders, key=_job_number):
        if (folder / METRICS_FILE).is_file():
            continue
        error = folder / ERROR_FILE
        lines = error.read_text(encoding="utf-8").strip().splitlines() if error.is_file() else []
        failures.append((folder, lines[-1] if lines else "no metrics.json and no error.txt (killed?)"))
    return failures


def _job_number(folder: Path) -> tuple[int, str]:
    """Hydra names a multirun's job folders ``<job number>_<overrides>``."""
    number, _, _ = folder.name.partition("_")
    return (int(number) if number.isdigit() else 1 << 30, folder.name)
