"""Frames covered on a clip: counts against a hand-made case, and the command's refusals."""

import numpy as np
import pytest

from fourfold.faceblur.evaluation import framecover


def test_cover_counts_frames_with_a_box_and_all_boxes():
    per_frame = {0: 0, 1: 2, 2: 1, 3: 0}  # frame index -> number of boxes
    frames = [np.full((4, 4, 3), k, np.uint8) for k in per_frame]
    res = framecover.cover(lambda f: np.zeros((per_frame[int(f[0, 0, 0])], 4)), frames)
    assert res["frames_covered"] == 2 and res["boxes"] == 3 and res["seconds_per_frame"] >= 0


def test_cover_counts_the_reference_boxes_found_and_its_own_unmatched_ones():
    """Frame 0: two boxes on one of the two reference boxes (found once) and one far from both; frame 1: a
    box where the reference has none; frame 2: nothing found."""
    a, b, far = [0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]
    near_a = [2, 2, 12, 12]  # IoU with a: 64 / 136 = 0.47
    ours = {0: [near_a, [1, 1, 11, 11], far], 1: [a], 2: []}
    reference = [np.array([a, b]), np.zeros((0, 4)), np.array([a])]
    frames = [np.full((4, 4, 3), k, np.uint8) for k in ours]
    res = framecover.cover(lambda f: np.array(ours[int(f[0, 0, 0])]).reshape(-1, 4), frames, reference)
    assert res["reference_found"] == 1 and res["unmatched"] == 2 and res["frames_covered"] == 2


def test_unknown_method_and_missing_clip_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown method"):
        framecover.make_method("nope")
    with pytest.raises(SystemExit):
        framecover.main(["--clip", str(tmp_path / "none.avi")])
    assert "make faceblur-sources" in capsys.readouterr().err


def test_yolo_methods_take_the_weights_they_are_given():
    """``--yolo-weights``: the YOLO methods load that file, not the tool's (a missing one is an error)."""
    from fourfold.faceblur.tool import detectors

    synthetic = detectors.packaged_weights("yolo_face.pt")
    for name in ("yolo", "yolo_native"):
        method = framecover.make_method(name, synthetic)
        boxes = method(np.zeros((64, 96, 3), np.uint8))
        assert boxes.shape[1:] == (4,)
    for name in ("yolo", "yolo_native", "yolo_low"):
        with pytest.raises(FileNotFoundError):
            framecover.make_method(name, detectors.packaged_weights("no_such.pt"))


def test_against_labels_counts_faces_heads_and_boxes_outside_the_labels():
    """Frame 0: a face found twice (counted once), a head from behind missed, a box on a labelled non-head
    and one on nothing labelled; frame 1: a face missed; frame 2: unlabelled (skipped)."""
    face, head, other, nothing = [0, 0, 10, 10], [50, 50, 60, 60], [100, 0, 110, 10], [200, 200, 210, 210]
    labelled = [
        (np.array([face, head, other], float), ["face", "head", "other"]),
        (np.array([face], float), ["face"]),
        None,
    ]
    found = [np.array([[1, 1, 11, 11], face, other, nothing], float), np.zeros((0, 4))]
    found.append(np.array([face], float))
    res = framecover.against_labels(found, labelled)
    assert res == {
        "faces": 2,
        "faces_found": 1,
        "face_frames": 2,
        "face_frames_found": 1,
        "heads_found": 0,
        "on_other": 1,
        "outside_labels": 1,
    }


def test_the_labels_are_for_vtest_only(tmp_path):
    """``load_labels``: the packaged file's labels load (50 frames, every 16th) for the clip with its sha256,
    and any other clip gets None."""
    import hashlib
    import json

    other = tmp_path / "other.avi"
    other.write_bytes(b"not vtest")
    assert framecover.load_labels(other) is None
    data = json.loads(framecover.LABELS.read_text())
    fake = tmp_path / "labels.json"
    fake.write_text(json.dumps({**data, "sha256": hashlib.sha256(b"not vtest").hexdigest()}))
    labels = framecover.load_labels(other, fake)
    assert sorted(labels) == list(range(0, 800, 16))
    names = [n for _, ns in labels.values() for n in ns]
    assert (names.count("face"), names.count("head"), names.count("other")) == (98, 37, 127)
    assert all(boxes.shape == (len(ns), 4) for boxes, ns in labels.values())
