"""Threshold calibration on held-out training-pool photos: the sweep's bookkeeping, checked by hand, and the
sweep's merge being the detector's own."""

import numpy as np
import pytest
import torch

from fourfold.faceblur.evaluation import calibration as cal
from fourfold.faceblur.tool.detectors import Pass, YoloDetector, merge_passes


def _photo():
    """A 150x100 photo with one face: the native pass sees it (0.8) and a false box (0.4); the small-face
    pass sees another false box (0.6)."""
    faces = np.array([[20, 20, 60, 70]], float)
    native = Pass(np.array([[20, 20, 60, 70], [100, 10, 140, 60]], float), np.array([0.8, 0.4]))
    upscaled = Pass(np.array([[0, 60, 30, 90]], float), np.array([0.6]), upscaled=True)
    return cal.Scored((100, 150), [native, upscaled], faces, np.zeros((0, 4)))


def test_photo_outcome_counts_covered_faces_and_false_pixels():
    p = _photo()
    covered, false = cal.photo_outcome(p, p.faces, mask_scale=1.6)
    assert covered == 1 and false == 0.0  # the face's own box blurs nothing that is not allowed
    covered, false = cal.photo_outcome(p, np.array([[100, 10, 140, 60]], float), mask_scale=1.6)
    assert covered == 0 and 0.24 < false < 0.27  # an ellipse of 64x80 px (0.268 of 150x100), cut at edges


def test_the_small_face_pass_gets_its_own_threshold():
    rows = cal.sweep([_photo()], [0.3, 0.5, 0.7, 0.9], mask_scale=1.6, upscale_grid=[0.3, 0.5, 0.7, 0.9])
    choice = cal.best(rows, budget=0.0)
    assert choice["covered"] == 1.0 and choice["false_mean"] == 0.0
    assert (choice["threshold"], choice["upscale"]) == (0.5, 0.7)  # the lowest keeping both false boxes out
    assert (cal.best(rows, budget=100.0)["threshold"], cal.best(rows, budget=100.0)["upscale"]) == (0.3, 0.3)
    assert cal.best(rows, budget=-1.0) is None
    one = cal.sweep([_photo()], [0.3, 0.5, 0.7, 0.9], mask_scale=1.6)  # one threshold for every pass
    assert [r["upscale"] for r in one] == [None] * 4
    assert cal.best(one, budget=0.0)["threshold"] == 0.7  # must also keep the 0.6 box out


def test_the_sweep_sees_what_the_detector_blurs():
    """A detector whose model gives fixed boxes per pass size: its passes at the floor, thresholded by the
    sweep's merge, equal its ``detect`` at those thresholds."""
    outputs = {
        400: ([[10, 10, 50, 60], [200, 50, 260, 120]], [0.7, 0.35]),
        320: ([[12, 11, 52, 61]], [0.9]),
        # the 2x pass: boxes 12, 49 and 200 px tall
        800: ([[300, 200, 310, 212], [11, 10, 49, 59], [50, 50, 200, 250]], [0.5, 0.45, 0.8]),
    }

    def detector(threshold, upscale_threshold):
        det = object.__new__(YoloDetector)
        det.imgsz, det.pyramid, det.iou, det.max_box_frac = None, (640, 320), 0.5, None
        det.threshold, det.upscale_threshold = threshold, upscale_threshold
        det.upscale, det.flip = True, False
        det._torch = torch
        det.model = det.upscale_model = None  # the fake passes below stand for both networks

        def fake_pass(frame, size, threshold, model=None):  # what decode gives: the boxes >= the threshold
            boxes, scores = (np.asarray(v, float) for v in outputs[size])
            keep = scores >= threshold
            return boxes.reshape(-1, 4)[keep], scores[keep]

        det._pass = fake_pass
        return det

    frame = np.zeros((300, 400, 3), np.uint8)
    passes = detector(0.3, None).passes(frame, cal.FLOOR)
    assert [p.upscaled for p in passes] == [False, False, True]
    assert len(passes[2].boxes) == 2  # the 200 px box of the 2x pass is dropped (UPSCALE_KEEP_PX)
    photo = cal.Scored(frame.shape[:2], passes, np.zeros((0, 4)), np.zeros((0, 4)))
    for t, tu in [(0.3, None), (0.4, 0.5), (0.5, 0.3), (0.8, 0.46)]:
        rows = cal.sweep([photo], [t], mask_scale=1.6, upscale_grid=None if tu is None else [tu])
        merged = merge_passes(passes, frame.shape, t, tu)
        boxes, scores = detector(t, tu).detect(frame)
        np.testing.assert_allclose(np.sort(scores), np.sort(merged[1]))
        np.testing.assert_allclose(boxes[np.argsort(scores)], merged[0][np.argsort(merged[1])])
        assert rows[0]["false_mean"] == pytest.approx(100 * cal.photo_outcome(photo, boxes, 1.6)[1])


def test_shrunk_copies_scale_boxes_and_ignore_faces_too_small_to_find():
    from fourfold.faceblur.data.realstills import LabelledPhoto

    image = np.zeros((200, 300, 3), np.uint8)
    faces = np.array([[10, 10, 50, 70], [100, 100, 120, 124]], float)  # 60 and 24 px tall
    photo = LabelledPhoto(image, faces, "p", "sha", np.array([[200, 0, 220, 20]], float))
    small = cal.shrunk(photo, 0.25)
    assert small.image.shape == (50, 75, 3)
    np.testing.assert_allclose(small.faces, [[2.5, 2.5, 12.5, 17.5]])  # 15 px: kept
    np.testing.assert_allclose(small.ignore, [[50, 0, 55, 5], [25, 25, 30, 31]])  # the 6 px face: ignored
    assert small.key == "p@0.25" and photo.faces.shape == (2, 4)  # the original is untouched
    with pytest.raises(Exception, match="shrink factors"):
        cal.parse_factors("0.5,1.5")
