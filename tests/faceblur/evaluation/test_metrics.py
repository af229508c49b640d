"""Metrics on hand-computed cases and against brute force."""

import numpy as np
import pytest

from fourfold.faceblur.evaluation import metrics


def test_average_precision_hand_cases():
    gt = [np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]])]
    perfect = [(np.array([[0, 0, 10, 10]]), np.array([0.9])), (np.array([[0, 0, 10, 10]]), np.array([0.8]))]
    assert metrics.average_precision(perfect, gt) == pytest.approx(1.0)
    # A false positive ranked first, then both hits: precision 1/2 at recall 1/2 and 2/3 at recall 1.
    preds = [
        (np.array([[50, 50, 60, 60], [0, 0, 10, 10]]), np.array([0.95, 0.9])),
        (np.array([[0, 0, 10, 10]]), np.array([0.8])),
    ]
    assert metrics.average_precision(preds, gt) == pytest.approx(2 / 3)
    # Only one face found: AP = recall 0.5 at precision 1.
    assert metrics.average_precision([perfect[0], (np.zeros((0, 4)), np.zeros(0))], gt) == pytest.approx(0.5)
    # Duplicates count as false positives.
    dup = [(np.array([[0, 0, 10, 10], [0, 0, 10, 10]]), np.array([0.9, 0.8]))]
    assert metrics.average_precision(dup, gt[:1]) == pytest.approx(1.0)
    assert np.isnan(metrics.average_precision([(np.zeros((0, 4)), np.zeros(0))], [np.zeros((0, 4))]))


def test_recall_by_size_bins():
    gt = [np.array([[0, 0, 10, 10], [0, 50, 40, 90], [100, 100, 200, 200]])]
    preds = [(np.array([[0, 0, 10, 10], [100, 100, 200, 200]]), np.array([0.9, 0.2]))]
    r = metrics.recall_by_size(preds, gt, threshold=0.5)
    assert r["recall"] == pytest.approx(1 / 3)
    assert r["recall_lt16"] == 1.0 and r["recall_32_64"] == 0.0 and r["recall_ge64"] == 0.0
    assert np.isnan(r["recall_16_32"])


def test_coverage_psnr_and_leaks():
    before = np.zeros((40, 40, 3), np.uint8)
    after = before.copy()
    after[10:30, 10:30] = 50
    changed = metrics.changed_mask(before, after)
    cov = metrics.face_coverage(changed, [[10, 10, 30, 30], [0, 0, 8, 8], [5, 10, 35, 30]])
    assert list(cov) == [True, False, False]
    outside = metrics.outside_mask((40, 40), [[10, 10, 30, 30]], dilate=1.0)
    assert metrics.psnr(before, after, outside & ~changed) == float("inf")
    assert metrics.psnr(before, after) == pytest.approx(10 * np.log10(255**2 / (50**2 * 400 / 1600)))
    leaks = metrics.leak_frames({0: [True, False, False], 1: [True, True]})
    assert leaks == {"leak_frames": 2.0, "leak_frames_per_track": 1.0, "tracks_leaking": 0.5}
