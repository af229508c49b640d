"""Threshold calibration on held-out training-pool photos: the sweep's bookkeeping, checked by hand."""

import numpy as np

from fourfold.faceblur.evaluation import calibration as cal


def _photo():
    faces = np.array([[20, 20, 60, 70]], float)
    boxes = np.array([[20, 20, 60, 70], [100, 10, 140, 60], [0, 0, 150, 100]], float)
    scores = np.array([0.8, 0.4, 0.6])
    return cal.Scored((100, 150), boxes, scores, faces, np.zeros((0, 4)))


def test_keep_mask_uses_the_large_threshold_for_tall_boxes():
    p = _photo()
    keep = cal.keep_mask(p.boxes, p.scores, 100, small_t=0.3, large_t=0.7, split=0.6)
    np.testing.assert_array_equal(keep, [True, True, False])  # the 100 px box is tall: 0.6 < 0.7


def test_photo_outcome_counts_covered_faces_and_false_pixels():
    p = _photo()
    covered, false = cal.photo_outcome(p, np.array([True, False, False]), mask_scale=1.6)
    assert covered == 1 and false == 0.0  # the face's own box blurs nothing that is not allowed
    covered, false = cal.photo_outcome(p, np.array([False, True, False]), mask_scale=1.6)
    assert covered == 0 and 0.24 < false < 0.27  # an ellipse of 64x80 px (0.268 of 150x100), cut at edges


def test_best_respects_the_budget():
    rows = cal.sweep([_photo()], [0.3, 0.5, 0.7, 0.9], split=0.6, mask_scale=1.6)
    choice = cal.best(rows, budget=0.0)
    assert choice["covered"] == 1.0 and choice["false_mean"] == 0.0
    assert (choice["small"], choice["large"]) == (0.5, 0.7)  # the lowest that keep both false boxes out
    assert cal.best(rows, budget=100.0)["small"] == 0.3  # everything allowed: the lowest of all
    assert cal.best(rows, budget=-1.0) is None
    single = cal.best(rows, budget=0.0, single=True)
    assert (single["small"], single["large"]) == (0.7, 0.7)  # one threshold must keep both boxes out
