"""Box geometry on hand-computed cases and against brute force on a pixel grid."""

import numpy as np
import pytest

from fourfold.faceblur.tool.boxes import iou_matrix


def test_iou_hand_cases_and_brute_force():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[25 / 175, 0.0, 1.0]])
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
        assert iou_matrix(boxa, boxb)[0, 0] == pytest.approx(brute)
