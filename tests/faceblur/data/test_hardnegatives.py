"""Hard negatives: which detections count as false, and the stills cropped around them."""

import numpy as np

from fourfold.faceblur.data import hardnegatives as hn
from fourfold.faceblur.data import realstills as st


def test_false_detections_by_hand():
    faces = np.array([[100, 100, 140, 150]], float)
    ignore = np.array([[300, 20, 330, 60]], float)
    boxes = np.array(
        [
            [100, 100, 140, 150],  # the face itself
            [110, 110, 125, 130],  # a part of the face (inside it)
            [80, 70, 170, 190],  # a head-and-shoulders box holding the face
            [302, 22, 328, 58],  # an ignore region (a face the labels do not trust)
            [200, 200, 240, 250],  # nothing there: false
            [10, 10, 18, 18],  # false, but too small to matter
        ]
    )
    np.testing.assert_array_equal(
        hn.false_detections(boxes, faces, ignore), [False, False, False, False, True, False]
    )
    assert hn.false_detections(boxes, np.zeros((0, 4)), np.zeros((0, 4))).sum() == 5
    assert hn.false_detections(np.zeros((0, 4)), faces, ignore).shape == (0,)


class _Fixed:
    """A detector that reports the same boxes on every photo."""

    def __init__(self, boxes, scores):
        self.boxes, self.scores = np.asarray(boxes, float), np.asarray(scores, float)

    def detect(self, image):
        return self.boxes.copy(), self.scores.copy()


def _photos():
    face = (40, 40, 80, 90)
    image = np.full((200, 300, 3), 90, np.uint8)
    image[40:90, 40:80] = (255, 0, 0)
    with_face = st.LabelledPhoto(image, np.array([face], float), "p:0", "sha0")
    empty = [
        st.LabelledPhoto(np.full((200, 300, 3), 40 + i, np.uint8), np.zeros((0, 4)), f"n:{i}", f"neg{i}")
        for i in range(3)
    ]
    return [with_face, *empty]


def test_mine_keeps_only_false_detections():
    photos = _photos()
    hard = hn.mine(photos, _Fixed([[40, 40, 80, 90], [200, 100, 240, 150]], [0.9, 0.6]))
    # the photo with a face: only the box away from it; the face-free photos: both boxes
    assert [h.photo for h in hard] == [0, 1, 1, 2, 2, 3, 3]
    assert hard[0].box == (200.0, 100.0, 240.0, 150.0) and hard[0].score == 0.6
    assert "7 false detections on 4 files" in hn.summary(photos, hard)


def test_hard_stills_are_seeded_and_centred_on_the_false_detection():
    photos = _photos()
    image = photos[1].image.copy()
    image[100:150, 200:240] = (0, 255, 0)  # the texture the detector took for a face
    for seed in range(10):  # the crop always shows it, zoomed to a face's size
        out, boxes = st.crop_scaled(
            image, np.zeros((0, 4)), np.random.default_rng(seed), 96, (8, 40), centre=(200, 100, 240, 150)
        )
        green = (out[..., 1] > 150) & (out[..., 0] < 100)
        assert green.any() and len(boxes) == 0
        assert 8 * 0.7 <= np.ptp(np.nonzero(green.any(axis=1))[0]) + 1 <= 40 * 1.1
    photos[1] = st.LabelledPhoto(image, photos[1].faces, photos[1].key, photos[1].sha256)
    hard = [hn.HardNegative(1, (200.0, 100.0, 240.0, 150.0), 0.6)]
    a = st.make_real_stills(photos, 20, seed=1, size=96, face_px=(8, 40), hard=hard, hard_share=1.0)
    b = st.make_real_stills(photos, 20, seed=1, size=96, face_px=(8, 40), hard=hard, hard_share=1.0)
    assert all((x[0] == y[0]).all() and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert all(len(boxes) == 0 for _, boxes in a)  # the photo's face is far from the texture
    # hard_share 0 leaves the stills as they were without hard negatives
    plain = st.make_real_stills(photos, 10, seed=1, size=96, face_px=(8, 40))
    same = st.make_real_stills(photos, 10, seed=1, size=96, face_px=(8, 40), hard=hard, hard_share=0.0)
    assert all((x[0] == y[0]).all() for x, y in zip(plain, same))
