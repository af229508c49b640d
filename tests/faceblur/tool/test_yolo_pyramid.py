"""YOLO's image pyramid: extra passes on the shrunk frame, merged by NMS, only below the first pass's size."""

import numpy as np
import torch

from fourfold.faceblur.tool.detectors import YoloDetector


def _detector(outputs, pyramid, upscale=False):
    """A YoloDetector whose passes return fixed (boxes, scores) per size, no model loaded."""
    det = object.__new__(YoloDetector)
    det.imgsz, det.pyramid, det.threshold, det.iou, det.max_box_frac = None, pyramid, 0.3, 0.5, None
    det.upscale, det.flip, det.upscale_threshold = upscale, False, None
    det._torch = torch
    det.model = det.upscale_model = None  # the fake passes stand for both networks
    det.calls = []

    def fake_pass(frame, size, threshold=None, model=None):
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


def test_a_surveillance_frame_gets_a_small_face_pass_that_keeps_small_boxes_only():
    """768x576 (PAL, the size of opencv's vtest.avi): a pass at 1536 whose boxes under UPSCALE_KEEP_PX
    tall are kept; a large box seen only at twice the size is dropped, one seen at native size is not."""
    from fourfold.faceblur.tool.detectors import UPSCALE_KEEP_PX, UPSCALE_MAX

    assert 768 <= UPSCALE_MAX < 1280
    outputs = {
        768: ([[500, 100, 600, 230]], [0.8]),  # a large face at native size
        1536: ([[100, 200, 109, 211], [300, 50, 400, 50 + UPSCALE_KEEP_PX]], [0.5, 0.6]),  # 11 px; 64 px
    }
    det = _detector(outputs, (640, 320), upscale=True)
    boxes, scores = det.detect(np.zeros((576, 768, 3), np.uint8))
    assert det.calls == [768, 640, 320, 1536]
    order = np.argsort(-scores)
    np.testing.assert_allclose(boxes[order], [[500, 100, 600, 230], [100, 200, 109, 211]])


def test_fuse_flipped_averages_matched_boxes_and_halves_the_rest():
    from fourfold.faceblur.tool.detectors import fuse_flipped

    a = np.array([[10, 10, 50, 60], [200, 10, 240, 50]], float)  # a face; a texture seen from one side only
    b = np.array([[12, 10, 52, 60], [400, 300, 420, 320]], float)  # the face again; another one-sided box
    boxes, scores = fuse_flipped(a, [0.8, 0.7], b, [0.6, 0.4])
    order = np.argsort(-scores)
    np.testing.assert_allclose(scores[order], [0.7, 0.35, 0.2])
    np.testing.assert_allclose(boxes[order][0], [11, 10, 51, 60])
    empty, none = fuse_flipped(np.zeros((0, 4)), [], np.zeros((0, 4)), [])
    assert empty.shape == (0, 4) and none.shape == (0,)
    only_b, s = fuse_flipped(np.zeros((0, 4)), [], b, [0.6, 0.4])
    np.testing.assert_allclose(s, [0.3, 0.2])


def test_flip_mirrors_boxes_back_before_fusing():
    det = _detector({}, (640, 320))
    det.flip = True
    width = 400

    def fake_pass(frame, size, threshold=None, model=None):
        mirrored = frame[0, 0, 0] == 1  # the test marks the mirrored view in its top-left pixel
        box = [width - 60, 20, width - 20, 70] if mirrored else [20, 20, 60, 70]
        return np.array([box], float), np.array([0.5])

    det._pass = fake_pass
    frame = np.zeros((300, width, 3), np.uint8)
    frame[0, -1, 0] = 1  # becomes the top-left pixel once mirrored
    boxes, scores = det.detect(frame)
    np.testing.assert_allclose(boxes, [[20, 20, 60, 70]])
    np.testing.assert_allclose(scores, [0.5])


def test_a_second_networks_boxes_only_add_faces():
    """``merge_passes``: a box of an adding pass (the small-face network) that overlaps a box of the file's
    network is dropped even when it scores higher, so that box stays as it was; one elsewhere is added at
    the upscaled threshold, and one below it is not."""
    from fourfold.faceblur.tool.detectors import Pass, merge_passes

    native = Pass(np.array([[10, 10, 30, 30]], float), np.array([0.5]))
    upscaled = Pass(np.array([[100, 100, 110, 110]], float), np.array([0.45]), upscaled=True)
    adds = Pass(
        np.array([[11, 11, 31, 31], [200, 50, 208, 58], [300, 50, 308, 58]], float),
        np.array([0.9, 0.41, 0.39]),
        upscaled=True,
        adds=True,
    )
    boxes, scores = merge_passes([native, upscaled, adds], (240, 320), 0.45, upscale_threshold=0.4)
    np.testing.assert_allclose(boxes, [[10, 10, 30, 30], [100, 100, 110, 110], [200, 50, 208, 58]])
    np.testing.assert_allclose(scores, [0.5, 0.45, 0.41])
    alone, _ = merge_passes([native, upscaled], (240, 320), 0.45, upscale_threshold=0.4)
    np.testing.assert_allclose(alone, boxes[:2])
