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
    import torch

    from fourfold.faceblur.data import formats, synthetic
    from fourfold.faceblur.models import yolo
    from fourfold.faceblur.tool.detectors import YoloDetector

    stills = synthetic.make_stills(16, "train", seed=0, size=(160, 160))
    formats.write_yolo_split(stills, tmp_path / "d", "train")
    formats.write_yolo_split(stills[:4], tmp_path / "d", "val")
    threads = torch.get_num_threads()
    best = yolo.train(formats.write_yolo_yaml(tmp_path / "d"), tmp_path, epochs=1, imgsz=160, batch=8)
    assert torch.get_num_threads() == threads  # ultralytics would reset it to cpu_count - 1
    weights = yolo.export_weights(best, tmp_path / "y.pt", imgsz=160)
    boxes, scores = YoloDetector(weights, threshold=0.0).detect(stills[0][0])
    assert boxes.shape[1] == 4 and len(boxes) == len(scores)


def test_packaged_weights_are_the_paper_presets_models():
    """`faceblur/train` exports the packaged weights and `faceblur/paper` retrains them: same recipe."""
    from hydra import compose, initialize_config_dir

    from fourfold.core.cli import CONF_DIR

    def training_knobs(preset):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose("config", overrides=[f"experiment=faceblur/{preset}"])
        fb = cfg.faceblur
        data = {k: v for k, v in fb.data.items() if k not in ("test_images", "clips", "clip_frames")}
        unet = {k: v for k, v in fb.unet.items() if not k.startswith("weights") and k != "size"}
        return cfg.seed, data, dict(fb.yolo), unet, list(fb.train.models), dict(fb.blur)

    assert training_knobs("train") == training_knobs("paper")


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    """``yolo.init``: ultralytics' loader reads back exactly the tensors of the packaged weights."""
    import torch

    from fourfold.faceblur.models import yolo
    from fourfold.faceblur.tool.detectors import packaged_weights

    yolo.offline_environment(tmp_path / "cfg")
    from ultralytics.nn.tasks import load_checkpoint

    start = yolo.start_checkpoint(packaged_weights("yolo_face.pt"), tmp_path / "init.pt")
    model, _ = load_checkpoint(start)
    packaged = torch.load(packaged_weights("yolo_face.pt"), weights_only=True)["state_dict"]
    loaded = model.state_dict()
    assert loaded.keys() == packaged.keys()
    assert all(torch.equal(loaded[k].half(), v) for k, v in packaged.items() if v.is_floating_point())


@pytest.mark.slow
def test_teacher_stills_carry_the_detectors_boxes():
    """The authors' U-Net targets: each still's boxes become approach 1's detections on it."""
    import numpy as np

    from fourfold.faceblur.data import synthetic
    from fourfold.faceblur.lit import teacher_stills
    from fourfold.faceblur.tool.detectors import YoloDetector

    stills = synthetic.make_stills(2, "test", seed=5, size=(160, 160))
    relabelled = teacher_stills(stills, None, threshold=0.3)
    detector = YoloDetector(None, threshold=0.3)
    for (image, _), (same, boxes) in zip(stills, relabelled):
        assert same is image
        np.testing.assert_array_equal(boxes, detector.detect(image)[0])
