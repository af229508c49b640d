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
    assert "fail, fail_seed, value" in result.stderr


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


def _conf_tree(root: Path) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "config.yaml").write_text("defaults: []\n")
    return root / "conf"


def test_config_tree_is_found_in_a_wheel_a_checkout_or_fourfold_conf(tmp_path):
    checkout = tmp_path / "repo"
    package = checkout / "packages" / "fourfold"
    package.mkdir(parents=True)
    repo_conf = _conf_tree(checkout)
    assert cli.find_conf_dir(package_dir=package) == repo_conf  # a checkout or an editable install
    wheel_conf = _conf_tree(package)
    assert cli.find_conf_dir(package_dir=package) == wheel_conf  # a wheel ships fourfold/conf
    elsewhere = _conf_tree(tmp_path / "mine")
    assert cli.find_conf_dir(str(elsewhere), package_dir=package) == elsewhere  # FOURFOLD_CONF wins


def test_missing_config_tree_says_how_to_set_fourfold_conf(tmp_path):
    package = tmp_path / "site-packages" / "fourfold"
    package.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="FOURFOLD_CONF"):
        cli.find_conf_dir(package_dir=package)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        cli.find_conf_dir(str(tmp_path / "nowhere"), package_dir=package)
    env = {**os.environ, "FOURFOLD_CONF": str(tmp_path / "nowhere"), "PYTHONPATH": str(REPO / "packages")}
    result = subprocess.run(
        [sys.executable, "-m", "fourfold", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "FOURFOLD_CONF" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_wheel_ships_the_config_tree(tmp_path):
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("fourfold-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("fourfold/conf/") for n in names if n.startswith("fourfold/conf/")}
    source = {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml")}
    assert source <= shipped


def test_multirun_with_a_failing_job_keeps_the_others_and_names_it(tmp_path):
    sweep = ("seed=0,1,2", "demo.fail_seed=1", "hydra/launcher=local")
    result = run_cli("-m", "experiment=demo/quick", SEARCH, *sweep, cwd=tmp_path)
    assert result.returncode != 0
    folders = run_folders(tmp_path)
    assert len(folders) == 3
    kept = [json.loads((f / "metrics.json").read_text())["value"] for f in folders if f.name[0] != "1"]
    assert sorted(kept) == [1.5, 4.5]  # seeds 0 and 2 ran to the end
    (failed,) = [f for f in folders if not (f / "metrics.json").exists()]
    assert failed.name.startswith("1_") and "seed=1" in failed.name
    assert "multirun: 1 of 3 jobs failed" in result.stderr
    assert f"  {failed.name}: RuntimeError: demo task failed on purpose" in result.stderr
