"""The synthetic generator: determinism by seed, identity-disjoint splits, exact boxes, clip ground truth."""

import numpy as np

from fourfold.faceblur import synthetic


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
