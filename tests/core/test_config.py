"""Every preset composes, names its task, and starts with the command that runs it."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fourfold.core.cli import CONF_DIR, available_presets, resolve_task

PRESETS = available_presets()
PAPERS = ("scoring", "hierarchical", "critical", "faceblur")


def test_presets_belong_to_papers():
    for preset in PRESETS:
        assert preset.split("/")[0] in PAPERS, f"{preset} is not under a paper's folder"


@pytest.mark.parametrize("preset", PRESETS or [pytest.param(None, marks=pytest.mark.skip("no preset yet"))])
def test_preset_composes(preset):
    path = CONF_DIR / "experiment" / f"{preset}.yaml"
    lines = path.read_text().splitlines()
    first_comments = [line for line in lines if line.startswith("#") and "@package" not in line]
    commands = ("python -m fourfold experiment=" + preset, "python -m fourfold -m experiment=" + preset)
    assert first_comments and any(c in first_comments[0] for c in commands), (
        f"{path}: the first comment line must be the command that runs it, its runtime and hardware"
    )
    # `make help` prints the second comment line as the preset's one-line description
    description = first_comments[1] if len(first_comments) > 1 else ""
    assert 10 < len(description) <= 102 and lines.index(description) == 2, (
        f"{path}: the third line must be a one-line description (a comment of at most 100 characters)"
    )
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={preset}"])
    assert f"{cfg.paper}/{cfg.preset}" == preset
    assert callable(resolve_task(cfg.task))
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"])
def test_trainer_configs_are_trainer_kwargs(trainer):
    import inspect

    import lightning as L

    cfg = OmegaConf.load(Path(CONF_DIR) / "trainer" / f"{trainer}.yaml")
    accepted = set(inspect.signature(L.Trainer.__init__).parameters)
    assert set(cfg.keys()) <= accepted, set(cfg.keys()) - accepted


@pytest.mark.parametrize("launcher", ["local", "slurm", "submitit_local"])
def test_launcher_configs_compose(launcher):
    here = Path(__file__).parent / "conf"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "experiment=demo/quick",
                f"hydra.searchpath=[file://{here}]",
                f"hydra/launcher={launcher}",
            ],
            return_hydra_config=True,
        )
    target = cfg.hydra.launcher._target_
    expected = {"local": "JoblibLauncher", "slurm": "SlurmLauncher", "submitit_local": "LocalLauncher"}
    assert target.endswith(expected[launcher])
