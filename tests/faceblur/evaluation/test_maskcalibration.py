"""Calibration of the face-mask U-Net's settings: the per-photo outcome against hand-built outputs, the choice
rule, and a sweep on a fake model whose mask is known."""

import numpy as np
import pytest
import torch

from fourfold.faceblur.data.realstills import LabelledPhoto
from fourfold.faceblur.evaluation import maskcalibration
from fourfold.faceblur.models.facemask import MaskSettings


def test_photo_outcome_counts_covered_faces_and_false_blur():
    image = np.zeros((100, 100, 3), np.uint8)
    faces = np.array([[10.0, 10.0, 30.0, 30.0], [60.0, 60.0, 80.0, 80.0]])
    out = image.copy()
    out[10:30, 10:30] = 10  # the first face changed by 10 levels, the second not at all
    out[0:2, 90:100] = 1  # 20 px changed by one level, far from any face: false blur
    covered, false = maskcalibration.photo_outcome(image, out, faces, np.zeros((0, 4)), 1.6)
    assert covered == 1 and false == pytest.approx(20 / 10000)
    out[60:80, 60:80] = 3  # changed, but by less than 4 levels: not covered
    assert maskcalibration.photo_outcome(image, out, faces, np.zeros((0, 4)), 1.6)[0] == 1


def test_best_prefers_recall_within_budget_then_low_threshold_then_small_size():
    rows = [
        {"size": 512, "threshold": 0.5, "min_area": 8, "covered": 0.9, "false_mean": 0.5},
        {"size": 384, "threshold": 0.5, "min_area": 8, "covered": 0.9, "false_mean": 0.8},
        {"size": 384, "threshold": 0.3, "min_area": 8, "covered": 0.95, "false_mean": 1.5},
        {"size": 640, "threshold": 0.4, "min_area": 8, "covered": 0.9, "false_mean": 0.9},
    ]
    assert maskcalibration.best(rows, 1.0) == rows[3]
    assert maskcalibration.best(rows[:2], 1.0) == rows[1]
    assert maskcalibration.best(rows, 2.0) == rows[2]
    assert maskcalibration.best(rows, 0.1) is None


class _SquareFinder(torch.nn.Module):
    """A fake mask model: logit 5 on a centre square of the input, -5 elsewhere."""

    head = "mask"

    def forward(self, x):
        h, w = x.shape[-2:]
        out = torch.full((x.shape[0], 1, h, w), -5.0)
        out[:, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 5.0
        return out


def test_sweep_on_a_model_whose_mask_is_known():
    rng = np.random.default_rng(0)
    face = LabelledPhoto(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8),
                         np.array([[44.0, 44.0, 84.0, 84.0]]), "pkg:a", "a")  # fmt: skip
    empty = LabelledPhoto(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), np.zeros((0, 4)), "pkg:b", "b")
    rows = maskcalibration.sweep(_SquareFinder(), [face, empty], [64], [0.5], [8, 100000], MaskSettings())
    by_area = {r["min_area"]: r for r in rows}
    assert by_area[8]["covered"] == 1.0  # the centre square holds the face's ellipse
    # on the face-free photo the centre square is all false blur: a quarter of its pixels, half the mean
    assert by_area[8]["false_max"] == pytest.approx(25.0, abs=1.0)
    assert by_area[100000]["covered"] == 0.0 and by_area[100000]["false_mean"] == 0.0
