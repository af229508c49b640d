"""Beyond one machine, on this one: Lightning DDP on CPU (trainer=ddp_cpu: 2 processes, gloo over loopback)
trains to the single-process result; a multirun through submitit's local executor (the SLURM launcher's
twin) leaves both run folders with their metrics."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SEARCH = f"hydra.searchpath=[file://{HERE / 'conf'}]"

# Same batches, same maths. Under DDP Lightning deals the training rows with a DistributedSampler (a
# permutation seeded 0 + epoch; rows 0, 2, 4, ... of it to one process, 1, 3, 5, ... to the other): each
# global step takes 16 consecutive rows of that permutation, 8 per process; each process takes its half's
# mean loss and DDP averages the two gradients, which is the gradient of the mean over the 16 rows. The
# one-process run takes the same permutation with batches of 16 (demo.ddp_order) and no dropout (the only
# other random draw). What is left is float32 rounding (the all-reduce adds in another order than one mean
# over 16 rows): measured 3e-8 to 3e-7 relative after 16 Adam steps; 1e-5 relative covers that with room
# to spare, while a wrong split (each process on all rows, unsynced gradients, batches of 8 or 32 in
# one process) moves these numbers by 1e-2 or more.
SINGLE = ("trainer=cpu", "demo.batch_size=16", "demo.ddp_order=true", "demo.dropout=0")
DDP = ("trainer=ddp_cpu", "demo.batch_size=8", "demo.dropout=0")
TOLERANCE = 1e-5


def run_cli(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "packages")]),
           "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "fourfold", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.slow
def test_ddp_on_cpu_matches_one_process(tmp_path):
    one = run_cli("experiment=demo/train", SEARCH, f"hydra.run.dir={tmp_path / 'one'}", *SINGLE, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    ddp = run_cli("experiment=demo/train", SEARCH, f"hydra.run.dir={tmp_path / 'ddp'}", *DDP, cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr

    single, distributed = metrics(tmp_path / "one"), metrics(tmp_path / "ddp")
    assert distributed["global_step"] == single["global_step"] == 16  # 4 epochs of 4 global batches
    for key in ("weight_sum", "weight_norm", "val_loss", "train_loss"):
        assert distributed[key] == pytest.approx(single[key], rel=TOLERANCE), key
    # the second process ran (its own log) and trained on the other half: one process alone on half the
    # rows, or on all rows with batches of 8, would not have matched above
    assert (tmp_path / "ddp" / "train_ddp_process_1.log").is_file()
    assert "metrics written" not in (tmp_path / "ddp" / "train_ddp_process_1.log").read_text()


@pytest.mark.slow
def test_multirun_through_submitit_local_leaves_both_run_folders(tmp_path):
    # hydra/launcher=submitit_local is the plugin's own config (submitit's local executor): the code path of
    # hydra/launcher=slurm (pickled jobs, a .submitit folder of job logs), run as local processes.
    result = run_cli("-m", "experiment=demo/quick", SEARCH, "seed=0,1", "hydra/launcher=submitit_local",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (sweep,) = (tmp_path / "runs" / "demo" / "quick").glob("multirun_*")
    folders = sorted(p for p in sweep.iterdir() if (p / ".hydra" / "config.yaml").is_file())
    assert [f.name for f in folders] == ["0_seed=0", "1_seed=1"]
    assert [metrics(f) for f in folders] == [{"value": 1.5, "seed": 0.0}, {"value": 3.0, "seed": 1.0}]
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # submitit ran them, not joblib
