"""The CLI dispatches to a task, records metrics or errors, and explains bad command lines."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fourfold.core import cli

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SEARCH = f"hydra.searchpath=[file://{HERE / 'conf'}]"


def run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "packages")])}
    return subprocess.run(
        [sys.executable, "-m", "fourfold", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_folders(root: Path) -> list[Path]:
    return sorted(p.parent.parent for p in root.glob("runs/**/.hydra/config.yaml"))


def test_dispatch_writes_metrics_next_to_config(tmp_path):
    result = run_cli("experiment=demo/quick", SEARCH, "demo.value=2.5", "seed=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(tmp_path)
    assert folder.parent == tmp_path / "runs" / "demo" / "quick"
    assert json.loads((folder / "metrics.json").read_text()) == {"value": 10.0, "seed": 3.0}
    assert "demo_tasks.echo" in (folder / ".hydra" / "config.yaml").read_text()


def test_failing_task_records_error_and_no_metrics(tmp_path):
    result = run_cli("experiment=demo/quick", SEARCH, "demo.fail=true", cwd=tmp_path)
    assert result.returncode != 0
    (folder,) = run_folders(tmp_path)
    assert not (folder / "metrics.json").exists()
    assert "demo task failed on purpose" in (folder / "error.txt").read_text()


def test_multirun_over_two_seeds_with_local_launcher(tmp_path):
    result = run_cli("-m", "experiment=demo/quick", SEARCH, "seed=0,1", "hydra/launcher=local", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folders = run_folders(tmp_path)
    assert len(folders) == 2
    values = sorted(json.loads((f / "metrics.json").read_text())["value"] for f in folders)
    assert values == [1.5, 3.0]


def test_unknown_experiment_lists_presets(tmp_path):
    result = run_cli("experiment=demo/nope", SEARCH, cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown experiment 'demo/nope'" in result.stderr
    assert "experiment=demo/quick" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_experiment_lists_presets(tmp_path):
    result = run_cli(SEARCH, cwd=tmp_path)
    assert result.returncode == 2
    assert "choose an experiment preset" in result.stderr and "experiment=demo/quick" in result.stderr


def test_unknown_key_lists_valid_keys(tmp_path):
    result = run_cli("experiment=demo/quick", SEARCH, "demo.valu=3", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown config key 'demo.valu'" in result.stderr
    assert "fail, value" in result.stderr


def test_unknown_trainer_lists_choices(tmp_path):
    result = run_cli("experiment=demo/quick", SEARCH, "trainer=tpu", cwd=tmp_path)
    assert result.returncode != 0
    assert "cpu" in result.stderr and "gpu" in result.stderr


def test_help_works_without_an_experiment(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m fourfold experiment=<paper>/<preset>" in result.stdout


def test_resolve_task_errors_name_the_problem():
    with pytest.raises(cli.UsageError, match="dotted path"):
        cli.resolve_task("nodots")
    with pytest.raises(cli.UsageError, match="cannot import module"):
        cli.resolve_task("fourfold.no_such_module.main")
    with pytest.raises(cli.UsageError, match="has no function 'nope'"):
        cli.resolve_task("fourfold.core.cli.nope")
    assert cli.resolve_task("fourfold.core.cli.main") is cli.main
