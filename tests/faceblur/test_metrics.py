"""Metrics on hand-computed cases and against brute force."""

import numpy as np
import pytest

from fourfold.faceblur import metrics


def test_iou_hand_cases_and_brute_force():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(metrics.iou_matrix(a, b), [[25 / 175, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.sort(rng.integers(0, 20, (2, 2)), axis=0)
        q = np.sort(rng.integers(0, 20, (2, 2)), axis=0)
        boxa = np.array([p[0, 0], p[0, 1], p[1, 0] + 1, p[1, 1] + 1], float)
        boxb = np.array([q[0, 0], q[0, 1], q[1, 0] + 1, q[1, 1] + 1], float)
        grid_a = np.zeros((22, 22), bool)
        grid_b = np.zeros((22, 22), bool)
        grid_a[int(boxa[1]) : int(boxa[3]), int(boxa[0]) : int(boxa[2])] = True
        grid_b[int(boxb[1]) : int(boxb[3]), int(boxb[0]) : int(boxb[2])] = True
        brute = (grid_a & grid_b).sum() / (grid_a | grid_b).sum()
        assert metrics.iou_matrix(boxa, boxb)[0, 0] == pytest.approx(brute)


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
