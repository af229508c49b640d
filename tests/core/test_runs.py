"""Run folders: metrics validation, atomic writes, loading and collecting runs."""

import json
import math

import pytest

from fourfold.core import runs
from fourfold.core.files import atomic_path, atomic_write_text


def make_run(root, name, paper="demo", preset="quick", seed=0, metrics=None, error=None):
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(
        f"paper: {paper}\npreset: {preset}\nseed: {seed}\ndemo:\n  n: {10 * (seed + 1)}\n"
    )
    if metrics is not None:
        runs.write_metrics(folder, metrics)
    if error is not None:
        runs.write_error(folder, error)
    return folder


def test_validate_metrics_accepts_numbers_and_rejects_the_rest():
    import numpy as np

    clean = runs.validate_metrics({"a": 1, "b": np.float32(0.5)})
    assert clean == {"a": 1.0, "b": 0.5} and all(type(v) is float for v in clean.values())
    with pytest.raises(TypeError, match="flat dict"):
        runs.validate_metrics([1, 2])
    with pytest.raises(TypeError, match="'nested'"):
        runs.validate_metrics({"nested": {"x": 1}})
    with pytest.raises(TypeError, match="'flag'"):
        runs.validate_metrics({"flag": True})
    with pytest.raises(TypeError, match="'name'"):
        runs.validate_metrics({"name": "text"})


def test_metrics_round_trip_with_nan(tmp_path):
    folder = make_run(tmp_path, "r0", metrics={"x": 2.0, "undefined": math.nan})
    assert json.loads((folder / "metrics.json").read_text()) == {"undefined": None, "x": 2.0}
    run = runs.load_run(folder)
    assert run.ok and run.metrics["x"] == 2.0 and math.isnan(run.metrics["undefined"])
    assert (run.paper, run.preset, run.seed) == ("demo", "quick", 0)


def test_find_runs_filters_and_skips_failures(tmp_path):
    make_run(tmp_path, "a/r0", seed=0, metrics={"x": 1.0})
    make_run(tmp_path, "a/r1", seed=1, metrics={"x": 3.0})
    make_run(tmp_path, "b/r0", paper="other", metrics={"x": 5.0})
    make_run(tmp_path, "a/r2", seed=2, error="Traceback ...")
    assert [r.seed for r in runs.find_runs(tmp_path, paper="demo")] == [0, 1]
    failed = [r for r in runs.find_runs(tmp_path, paper="demo", include_failed=True) if not r.ok]
    assert len(failed) == 1 and failed[0].error.startswith("Traceback")
    frame = runs.runs_frame(runs.find_runs(tmp_path, paper="demo"), config_keys=["demo.n"])
    assert list(frame["x"]) == [1.0, 3.0] and list(frame["demo.n"]) == [10, 20]


def test_load_run_rejects_a_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        runs.load_run(tmp_path)


def test_current_run_dir_outside_hydra_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no Hydra run in progress"):
        runs.current_run_dir()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = atomic_write_text(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind


def test_an_interrupt_as_the_temporary_file_is_made_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C in the instant after the temporary file exists (before the code that cleans it up would have
    started, in a plain mkstemp-then-try): nothing is left."""
    import os

    from fourfold.core import files

    real_close = os.close

    def close_then_interrupt(fd):
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "close", close_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("never")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_get_the_users_usual_permissions(tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)
    try:
        target = atomic_write_text(tmp_path / "out.txt", "text")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_failed_jobs_of_a_sweep_are_named_in_job_order(tmp_path):
    jobs = [("0_seed=0", "ok"), ("10_seed=10", "error"), ("2_seed=2", "killed"), ("1_seed=1", "ok")]
    for name, outcome in jobs:
        folder = tmp_path / name
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "config.yaml").write_text("seed: 0\n")
        if outcome == "ok":
            runs.write_metrics(folder, {"x": 1.0})
        elif outcome == "error":
            runs.write_error(folder, "Traceback (most recent call last):\n  ...\nValueError: bad value\n")
    failures = runs.failed_jobs(tmp_path)
    assert [(f.name, why) for f, why in failures] == [
        ("2_seed=2", "no metrics.json and no error.txt (killed?)"),
        ("10_seed=10", "ValueError: bad value"),
    ]
    assert runs.failed_jobs(tmp_path / "0_seed=0") == []
