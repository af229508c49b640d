"""Fault injection: a real training run killed by a real signal resumes from its last checkpoint and ends
exactly where an uninterrupted run ends; a multirun with one failing job keeps the others and names it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fourfold.core.runs import ERROR_FILE, METRICS_FILE
from fourfold.core.train import CHECKPOINT_DIR, LAST_CHECKPOINT

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SEARCH = f"hydra.searchpath=[file://{HERE / 'conf'}]"
BATCHES = 8  # demo/train: 64 rows, batches of 8
EPOCHS = 4


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "fourfold", "experiment=demo/train", SEARCH, f"hydra.run.dir={run_dir}",
            f"demo.epochs={EPOCHS}", *overrides]  # fmt: skip


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "packages")]),
            "OMP_NUM_THREADS": "1"}  # fmt: skip


def steps(run_dir: Path) -> list[int]:
    path = run_dir / "steps.txt"
    return [int(line) for line in path.read_text().split()] if path.is_file() else []


def run_to_end(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(run_dir, *overrides), env=environment(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def kill_mid_epoch(run_dir: Path, sig: signal.Signals) -> tuple[int, int, str]:
    """Start the run, wait until a checkpoint exists and the run is in the middle of a later epoch, send
    ``sig``; return the global step it was killed at (the last step it started), its exit status, stderr."""
    process = subprocess.Popen(command(run_dir, "demo.step_seconds=0.1"), env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    checkpoint = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    deadline = time.monotonic() + 240
    try:
        while True:
            done = steps(run_dir)
            # mid-epoch 2 (steps 8..15 are epoch 1, zero-based): the epoch-1 checkpoint has been written
            if checkpoint.is_file() and done and done[-1] >= BATCHES + BATCHES // 2:
                break
            assert process.poll() is None, (
                f"the run ended before it could be killed:\n{process.stderr.read()}"
            )
            assert time.monotonic() < deadline, "the run never reached the middle of its second epoch"
            time.sleep(0.02)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return steps(run_dir)[-1], process.returncode, stderr


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    result = run_to_end(run_dir)
    assert result.returncode == 0, result.stderr
    assert steps(run_dir) == list(range(EPOCHS * BATCHES))
    return json.loads((run_dir / METRICS_FILE).read_text())


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(
    tmp_path, uninterrupted, sig
):
    run_dir = tmp_path / "run"
    killed_at, status, _ = kill_mid_epoch(run_dir, sig)
    if sig == signal.SIGKILL:
        assert status == -signal.SIGKILL
    else:  # Lightning turns SIGTERM into SystemExit(); the CLI must not report that as a success
        assert status == 128 + signal.SIGTERM
        assert "resumes it from its last checkpoint" in (run_dir / "cli.log").read_text()
        assert "SIGTERMException" in (run_dir / ERROR_FILE).read_text()
    assert killed_at % BATCHES not in (0, BATCHES - 1), "the kill did not land mid-epoch"
    assert not (run_dir / METRICS_FILE).exists()
    first_attempt = len(steps(run_dir))

    result = run_to_end(run_dir)  # the same command, in the same folder
    assert result.returncode == 0, result.stderr
    resumed = steps(run_dir)[first_attempt:]
    checkpoint_step = (killed_at // BATCHES) * BATCHES  # the last end-of-epoch checkpoint before the kill
    assert resumed == list(range(checkpoint_step, EPOCHS * BATCHES))
    assert (run_dir / "logs" / "version_1" / "metrics.csv").is_file()  # the second attempt logged apart
    assert json.loads((run_dir / METRICS_FILE).read_text()) == uninterrupted
    assert not (run_dir / ERROR_FILE).exists()  # no stale error of the killed attempt next to the metrics
