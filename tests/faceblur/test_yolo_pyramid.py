"""YOLO's image pyramid: extra passes on the shrunk frame, merged by NMS, only below the first pass's size."""

import numpy as np
import torch

from fourfold.faceblur.detectors import YoloDetector


def _detector(outputs, pyramid, upscale=False):
    """A YoloDetector whose passes return fixed (boxes, scores) per size, no model loaded."""
    det = object.__new__(YoloDetector)
    det.imgsz, det.pyramid, det.threshold, det.iou, det.max_box_frac = None, pyramid, 0.3, 0.5, None
    det.upscale = upscale
    det._torch = torch
    det.calls = []

    def fake_pass(frame, size):
        det.calls.append(size)
        boxes, scores = outputs.get(size, (np.zeros((0, 4)), np.zeros(0)))
        return np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float)

    det._pass = fake_pass
    return det


def test_pyramid_adds_large_faces_and_drops_duplicates():
    frame = np.zeros((720, 1280, 3), np.uint8)
    outputs = {
        1280: ([[100, 100, 140, 150]], [0.6]),  # a small face, seen at native size
        640: ([[101, 99, 141, 151], [600, 100, 1000, 600]], [0.5, 0.4]),  # the same small face; a large one
        320: ([[598, 102, 1002, 598]], [0.7]),  # the large face again, more confident
    }
    det = _detector(outputs, (640, 320, 2000))
    boxes, scores = det.detect(frame)
    assert det.calls == [1280, 640, 320]  # 2000 is not below the native size: skipped
    order = np.argsort(-scores)
    np.testing.assert_allclose(scores[order], [0.7, 0.6])
    np.testing.assert_allclose(boxes[order], [[598, 102, 1002, 598], [100, 100, 140, 150]])


def test_without_pyramid_one_pass_and_boxes_clipped():
    frame = np.zeros((100, 200, 3), np.uint8)
    det = _detector({200: ([[-5, 10, 50, 120]], [0.9])}, ())
    boxes, scores = det.detect(frame)
    assert det.calls == [200]
    np.testing.assert_allclose(boxes, [[0, 10, 50, 100]])


def test_upscale_adds_a_pass_at_twice_the_size_of_small_frames_only():
    small = _detector({}, (640, 320), upscale=True)
    small.detect(np.zeros((300, 400, 3), np.uint8))
    assert small.calls == [400, 320, 800]
    large = _detector({}, (640, 320), upscale=True)
    large.detect(np.zeros((720, 1280, 3), np.uint8))
    assert large.calls == [1280, 640, 320]  # above UPSCALE_MAX: no extra pass
    off = _detector({}, (640, 320))
    off.detect(np.zeros((300, 400, 3), np.uint8))
    assert off.calls == [400, 320]
