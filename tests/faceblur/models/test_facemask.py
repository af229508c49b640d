"""The face-mask formulation of approach 2 (issue 21): losses against closed forms, the regions a probability
map keeps and their blur strength, and the settings' validation."""

import numpy as np
import pytest
import torch

from fourfold.faceblur.models.facemask import MaskSettings, alpha_map, mask_losses, region_sigma


def test_settings_refuse_a_floor_above_the_threshold():
    with pytest.raises(ValueError, match="floor < threshold"):
        MaskSettings(threshold=0.4, floor=0.5)
    assert MaskSettings(threshold=0.6, floor=0.2).as_dict()["threshold"] == 0.6


def test_losses_closed_form():
    logits = torch.tensor([0.0, 2.0, -1.0, 3.0]).view(1, 1, 2, 2)
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 2, 2)
    image = torch.rand(1, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    blurred = torch.rand(1, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    parts = mask_losses(logits, mask, image, blurred)
    p = 1 / (1 + np.exp(-np.array([0.0, 2.0, -1.0, 3.0])))
    m = np.array([1.0, 1.0, 0.0, 0.0])
    bce = -np.mean(m * np.log(p) + (1 - m) * np.log(1 - p))
    dice = 1 - (2 * (p * m).sum() + 1) / (p.sum() + m.sum() + 1)
    # the output frame p B + (1 - p) x against the teacher's m B + (1 - m) x: |p - m| |B - x| per pixel
    gap = np.abs(blurred.numpy() - image.numpy())[0]
    image_l1 = np.mean(np.abs(p - m).reshape(1, 2, 2) * gap)
    assert float(parts["bce"]) == pytest.approx(bce, rel=1e-5)
    assert float(parts["dice"]) == pytest.approx(dice, rel=1e-5)
    assert float(parts["image"]) == pytest.approx(image_l1, rel=1e-5)


def test_losses_vanish_for_a_confident_exact_mask():
    mask = torch.zeros(2, 8, 8)
    mask[:, 2:6, 2:6] = 1
    logits = (mask * 2 - 1).unsqueeze(1) * 40  # p is 0 or 1 to float precision
    image, blurred = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    parts = mask_losses(logits, mask, image, blurred)
    assert float(parts["bce"]) < 1e-6 and float(parts["image"]) < 1e-6
    assert float(parts["dice"]) < 0.05  # the +1 smoothing leaves 1 / (2 * 32 + 1)


def test_alpha_map_keeps_cores_large_enough_and_ramps_between_floor_and_threshold():
    prob = np.zeros((40, 60), np.float32)
    prob[5:25, 5:25] = 0.4  # support, between floor 0.3 and threshold 0.5
    prob[10:20, 10:20] = 0.9  # core: 100 px
    prob[30:33, 50:53] = 0.9  # a 9 px core: below min_area
    prob[2, 40] = 0.45  # support without any core
    settings = MaskSettings(threshold=0.5, floor=0.3, min_area=12)
    alpha, regions = alpha_map(prob, settings)
    assert len(regions) == 1
    region, core_box = regions[0]
    assert core_box == (10.0, 10.0, 20.0, 20.0)
    assert region.sum() == 400
    assert alpha[15, 15] == 1.0 and alpha[6, 6] == pytest.approx(0.5)  # (0.4 - 0.3) / (0.5 - 0.3)
    assert alpha[31, 51] == 0 and alpha[2, 40] == 0 and alpha[0, 0] == 0
    # min_area is in network pixels: at 2 frame pixels per network pixel the 100 px core needs 4x12 px
    assert len(alpha_map(prob, MaskSettings(min_area=30), scale=2.0)[1]) == 0
    assert len(alpha_map(prob, MaskSettings(min_area=24), scale=2.0)[1]) == 1


def test_region_sigma_runs_the_tools_mask_geometry_backwards():
    settings = MaskSettings()  # mask scale 1.6, sigma 0.25 x the smaller face side
    # a core 32 wide and 48 tall is the 1.6x ellipse of a 20 x 30 face: sigma 0.25 x 20
    assert region_sigma((0, 0, 32, 48), settings) == pytest.approx(5.0)
    assert region_sigma((0, 0, 1, 1), settings) == pytest.approx(0.3)  # the blur's floor
