"""Real-photo stills: label geometry survives the crop and zoom, ignore regions are painted out, splits."""

import numpy as np

from fourfold.faceblur.data import realstills as st


def _photo_with_squares(boxes, shape=(300, 400)):
    """A flat grey photo with one saturated red rectangle per box: a 'face' whose pixels we can find again."""
    image = np.full((*shape, 3), 90, np.uint8)
    for x1, y1, x2, y2 in boxes:
        image[y1:y2, x1:x2] = (255, 0, 0)
    return image


def _red_box(image):
    ys, xs = np.nonzero((image[..., 0] > 200) & (image[..., 1] < 60))
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def test_crop_scaled_boxes_follow_the_pixels():
    box = (150, 100, 190, 150)
    image = _photo_with_squares([box])
    for seed in range(8):
        rng = np.random.default_rng(seed)
        out, boxes = st.crop_scaled(image, np.array([box], float), rng, 160, (10, 120))
        if len(boxes) == 0:  # the face fell mostly outside this window
            continue
        assert out.shape == (160, 160, 3)
        np.testing.assert_allclose(boxes[0], _red_box(out), atol=1.5)


def test_paint_out_changes_only_the_grown_box():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    out = st.paint_out(image, [[40, 30, 60, 50]], grow=1.2)
    changed = np.nonzero((out != image).any(axis=2))
    assert changed[0].min() >= 28 and changed[0].max() < 53
    assert changed[1].min() >= 38 and changed[1].max() < 63
    assert (out[:28] == image[:28]).all()


def _photos():
    faces = [(40, 40, 80, 90), (200, 60, 240, 110)]
    with_faces = [
        st.LabelledPhoto(_photo_with_squares(faces), np.array(faces, float), f"p:{i}", f"sha{i}")
        for i in range(6)
    ]
    empty = [
        st.LabelledPhoto(np.full((200, 200, 3), 40 + i, np.uint8), np.zeros((0, 4)), f"n:{i}", f"neg{i}")
        for i in range(4)
    ]
    return with_faces + empty


def test_real_stills_are_seeded_and_boxes_lie_inside():
    photos = _photos()
    a = st.make_real_stills(photos, 12, seed=3, size=128, face_px=(8, 60))
    b = st.make_real_stills(photos, 12, seed=3, size=128, face_px=(8, 60))
    assert all((x[0] == y[0]).all() and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(len(boxes) for _, boxes in a)
    for image, boxes in a:
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert ((boxes >= 0) & (boxes <= 128)).all()


def test_split_is_by_file_and_disjoint():
    photos = [
        st.LabelledPhoto(np.zeros((2, 2, 3), np.uint8), np.zeros((0, 4)), f"v#frame{k}", f"sha{k // 5}")
        for k in range(200)
    ]
    train, val = st.split_photos(photos, val_share=0.3)
    assert len(train) + len(val) == 200 and val and train
    assert not {p.sha256 for p in train} & {p.sha256 for p in val}


def test_a_video_weighs_as_a_few_photos():
    frames = [st.LabelledPhoto(None, np.zeros((0, 4)), "v", "video") for _ in range(40)]
    photos = [st.LabelledPhoto(None, np.zeros((0, 4)), "p", f"photo{i}") for i in range(4)]
    odds = st.file_weights(frames + photos, cap=4)
    np.testing.assert_allclose(odds[:40].sum(), odds[40:].sum())


def _sharpness(image):
    return float(np.abs(np.diff(image.astype(float), axis=1)).mean())


def test_low_resolution_stills_lose_detail_but_keep_their_faces():
    """A checkerboard of 1 px cells loses its detail when shrunk at least 2x and enlarged again; a box's
    red square is still where its label says; a face too small to shrink by 1.5 gets the degradations
    only (at full resolution: the board keeps most of its detail)."""
    board = (np.indices((160, 160)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    image[40:100, 50:110] = (255, 0, 0)  # a 60 px "face"
    faces = np.array([[50, 40, 110, 100]], float)
    for seed in range(4):
        out = st.low_resolution(image, faces, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert _sharpness(out[:30]) < 0.3 * _sharpness(image[:30])  # the board is gone
        red = out[..., 0].astype(int) - out[..., 1] > 60  # red even in low light and noise
        ys, xs = np.nonzero(red)
        box = [*np.percentile([xs, ys], 1, axis=1), *(np.percentile([xs, ys], 99, axis=1) + 1)]
        np.testing.assert_allclose(box, faces[0], atol=5)  # the face stays where its label says
    tiny = np.array([[10, 10, 18, 18]], float)  # 8 px: cannot shrink 1.5x and stay 6 px tall
    kept = [_sharpness(st.low_resolution(image, tiny, np.random.default_rng(s))[:30]) for s in range(4)]
    assert max(kept) > 0.3 * _sharpness(image[:30])


def test_low_res_zero_leaves_the_stills_of_earlier_rounds_unchanged():
    photos = _photos()
    plain = st.make_real_stills(photos, 10, seed=5, size=128, face_px=(8, 60))
    zero = st.make_real_stills(photos, 10, seed=5, size=128, face_px=(8, 60), low_res=0.0)
    low = st.make_real_stills(photos, 10, seed=5, size=128, face_px=(8, 60), low_res=1.0)
    assert all((x[0] == y[0]).all() and np.array_equal(x[1], y[1]) for x, y in zip(plain, zero))
    assert any(not (x[0] == y[0]).all() for x, y in zip(plain, low))
