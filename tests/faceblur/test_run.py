"""The Hydra task end to end on the smoke preset (tiny YOLO and U-Net training, then the evaluation)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_preset_trains_and_evaluates(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [
        sys.executable,
        "-m",
        "fourfold",
        "experiment=faceblur/smoke",
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for method in ("centerface", "yolo", "yolo_hold", "unet_l1", "unet_mse"):
        assert f"{method}/coverage" in metrics and f"{method}/leak_frames" in metrics
    assert (run_dir / "weights" / "yolo_face.pt").is_file() and (run_dir / "examples.npz").is_file()


@pytest.mark.slow
def test_one_epoch_yolo_training_offline(tmp_path):
    """The section 5.3 recipe: build from yaml, train one epoch on 16 images at 160 px, no network."""
    from fourfold.faceblur import data, synthetic, yolo
    from fourfold.faceblur.detectors import YoloDetector

    stills = synthetic.make_stills(16, "train", seed=0, size=(160, 160))
    data.write_yolo_split(stills, tmp_path / "d", "train")
    data.write_yolo_split(stills[:4], tmp_path / "d", "val")
    best = yolo.train(data.write_yolo_yaml(tmp_path / "d"), tmp_path, epochs=1, imgsz=160, batch=8)
    weights = yolo.export_weights(best, tmp_path / "y.pt", imgsz=160)
    boxes, scores = YoloDetector(weights, threshold=0.0).detect(stills[0][0])
    assert boxes.shape[1] == 4 and len(boxes) == len(scores)
