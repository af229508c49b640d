"""Training glue of the face-mask U-Net: the learning-rate schedule, the dataset's targets, a step that lowers
the loss, and the train stage end to end (tiny pools) with resume and a loadable weights file."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from fourfold.faceblur.lit import MaskStills, MaskUNetModule, warmup_cosine
from fourfold.faceblur.models import unet


def test_warmup_then_cosine_closed_form():
    steps = 200  # warmup 10 steps
    assert warmup_cosine(0, steps) == pytest.approx(0.1)
    assert warmup_cosine(9, steps) == pytest.approx(1.0)
    assert warmup_cosine(10, steps) == pytest.approx(1.0)
    assert warmup_cosine(105, steps) == pytest.approx(0.05 + 0.95 * 0.5)  # half-way through the cosine
    assert warmup_cosine(200, steps) == pytest.approx(0.05)
    assert warmup_cosine(500, steps) == pytest.approx(0.05)


def tiny_pool(n=4, size=64, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    boxes = [np.array([[16.0, 16.0, 40.0, 44.0]], np.float32) if i % 2 == 0 else np.zeros((0, 4), np.float32)
             for i in range(n)]  # fmt: skip
    return images, boxes


def test_dataset_items_are_the_still_the_teachers_frame_and_mask():
    from fourfold.faceblur.data.maskstills import teacher_targets

    images, boxes = tiny_pool()
    data = MaskStills(images, boxes, seed=3, background_px=(10, 40))
    image, blurred, mask = data[0]
    assert image.shape == blurred.shape == (3, 64, 64) and mask.shape == (64, 64)
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    expected_blurred, expected_mask = teacher_targets(images[0], boxes[0], 0.25 * 24)  # median side 24
    assert np.array_equal(mask.numpy(), expected_mask)
    assert np.allclose(blurred.numpy().transpose(1, 2, 0) * 255, expected_blurred, atol=1e-3)
    assert float(data[1][2].sum()) == 0  # a face-free still: an empty mask
    assert torch.equal(data[1][1], MaskStills(images, boxes, seed=3, background_px=(10, 40))[1][1])


def test_one_step_lowers_the_mask_loss():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM, head="mask", spectral_norm=False)
    module = MaskUNetModule(model.train(), lr=1e-3)
    images, boxes = tiny_pool()
    batch = [torch.stack(t) for t in zip(*[MaskStills(images, boxes)[i] for i in range(4)])]
    opt = module.configure_optimizers()
    before = module._losses(batch)[1]["loss"]
    for _ in range(3):
        opt.zero_grad()
        module._losses(batch)[1]["loss"].backward()
        opt.step()
    assert module._losses(batch)[1]["loss"].item() < before.item()
    with pytest.raises(ValueError, match="head='mask'"):
        MaskUNetModule(unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM))


@pytest.mark.slow
def test_train_stage_resumes_and_writes_a_mask_model(tmp_path, monkeypatch):
    from fourfold.faceblur import run
    from fourfold.faceblur.data import maskstills

    pools = (tiny_pool(8, 64, 1), tiny_pool(4, 64, 2))
    monkeypatch.setattr(maskstills, "build_pools", lambda *a, **k: pools)
    cfg = OmegaConf.load(run.Path(run.__file__).parents[3] / "conf" / "faceblur" / "base.yaml")
    trainer = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}
    cfg = OmegaConf.create({"faceblur": cfg, "seed": 0, "trainer": trainer})
    cfg.faceblur.unet.update({"crop": 64, "batch": 4, "steps": 2, "trainable_stages": 1,
                              "encoder_weights": unet.RANDOM, "spectral_norm": False})  # fmt: skip
    cfg.faceblur.unet.mask.update({"checkpoint_every": 1, "val_every": 1})
    path = run.train_mask_unet(cfg, tmp_path)
    model = unet.load_unet(path, encoder_weights=unet.RANDOM)
    assert model.head == "mask" and model.encoder.trainable_stages == 1
    assert (tmp_path / "unet_mask" / "checkpoints" / "last.ckpt").is_file()
    cfg.faceblur.unet.steps = 3  # the same run folder: fit resumes at step 2
    run.train_mask_unet(cfg, tmp_path)
    logs = sorted((tmp_path / "unet_mask" / "logs").glob("version_*/metrics.csv"))
    assert len(logs) == 2 and "val_iou" in logs[0].read_text().splitlines()[0]
