"""Training stills of the face-mask U-Net: zoomed windows map the teacher's boxes exactly (unclipped), the
teacher's targets are the default tool's output, and stills depend only on (seed, index)."""

import numpy as np
import pytest

from fourfold.faceblur.data import maskstills
from fourfold.faceblur.data.realstills import LabelledPhoto
from fourfold.faceblur.tool.blur import blur_paper, ellipse_mask, fast_gaussian

SQUARE = (17, 231, 89)  # a colour the window's random border will not hit


def photo_with_square(h=300, w=400, box=(150, 100, 190, 150)):
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = SQUARE
    return image, np.array([box], float)


def test_zoom_crop_maps_the_box_onto_what_it_covers():
    image, faces = photo_with_square()
    for seed in range(20):
        crop, boxes = maskstills.zoom_crop(image, faces, np.random.default_rng(seed), 96, (10, 60))
        bright = np.argwhere((np.abs(crop.astype(int) - SQUARE) <= 40).all(axis=2))
        if not len(bright) or len(boxes) != 1:
            continue
        x1, y1, x2, y2 = boxes[0]
        # brute force: the bright pixels of the window are exactly those inside the mapped box (+-1 px)
        inside = bright[(bright[:, 1] > x1 + 1) & (bright[:, 1] < x2 - 2)]
        assert len(inside) and bright[:, 1].min() >= np.floor(x1) - 1 and bright[:, 1].max() <= np.ceil(x2)
        assert bright[:, 0].min() >= np.floor(y1) - 1 and bright[:, 0].max() <= np.ceil(y2)
        assert 9 <= y2 - y1 <= 61  # zoomed to the asked face height (a drawn box, not the bright patch)


def test_zoom_crop_keeps_boxes_cut_by_the_window_whole():
    image, faces = photo_with_square()
    cut = 0
    for seed in range(40):
        _, boxes = maskstills.zoom_crop(image, faces, np.random.default_rng(seed), 64, (40, 60))
        for x1, y1, x2, y2 in boxes:
            assert x2 > 0 and x1 < 64 and y2 > 0 and y1 < 64  # touches the window
            assert (x2 - x1) / (y2 - y1) == pytest.approx(40 / 50)  # unclipped: the face's own shape
            cut += x1 < 0 or y1 < 0 or x2 > 64 or y2 > 64
    assert cut > 0


def test_teacher_targets_are_the_default_tools_output():
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    boxes = np.array([[30.0, 20.0, 60.0, 60.0], [100.0, 70.0, 140.0, 110.0]])  # the second cut by the edge
    blurred, mask = maskstills.teacher_targets(image, boxes, background_sigma=6.0)
    ellipses = ellipse_mask(image.shape[:2], boxes, mask_scale=1.6) > 0
    assert np.array_equal(mask > 0, ellipses) and set(np.unique(mask)) <= {0.0, 1.0}
    tool = blur_paper(image, boxes, mask_scale=1.6, sigma_ratio=0.25, fast=True)
    assert np.array_equal(blurred[ellipses], tool[ellipses])
    assert np.array_equal(blurred[~ellipses], fast_gaussian(image, 6.0)[~ellipses])
    blurred, mask = maskstills.teacher_targets(image, np.zeros((0, 4)), background_sigma=6.0)
    assert not mask.any() and np.array_equal(blurred, fast_gaussian(image, 6.0))


def fake_photos():
    rng = np.random.default_rng(3)
    faces = []
    for k in range(3):
        image, box = photo_with_square(160, 200, (60, 40, 100, 90))
        image = (image * 0.5 + rng.integers(0, 120, image.shape)).astype(np.uint8)
        faces.append(LabelledPhoto(image, box, f"pkg:face{k}", f"sha{k}"))
    noise = [rng.integers(0, 256, (150, 180, 3), dtype=np.uint8) for _ in range(2)]
    empty = [LabelledPhoto(n, np.zeros((0, 4)), f"pkg:e{k}", f"e{k}") for k, n in enumerate(noise)]
    return faces + empty


def test_stills_depend_only_on_seed_and_index():
    maker = maskstills.MaskStillMaker(fake_photos(), 64, (10, 40))
    images, boxes = maskstills.make_pool(maker, 6, seed=5)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8 and len(boxes) == 6
    first, first_boxes = maskstills.make_pool(maker, 2, seed=5)
    assert np.array_equal(first, images[:2]) and all(np.array_equal(a, b) for a, b in zip(first_boxes, boxes))
    assert not np.array_equal(maskstills.make_pool(maker, 2, seed=6)[0], first)


def test_kinds_without_material_get_no_share():
    photos = fake_photos()
    maker = maskstills.MaskStillMaker(photos, 64, (10, 40))  # no synthetic faces, no hard negatives
    shares = dict(zip(maskstills.KINDS, maker.shares))
    assert shares["synthetic"] == 0 and shares["hard"] == 0 and sum(shares.values()) == pytest.approx(1)
    only_faces = maskstills.MaskStillMaker(photos[:3], 64, (10, 40))
    assert dict(zip(maskstills.KINDS, only_faces.shares))["photo"] == pytest.approx(1)
    with pytest.raises(ValueError, match="unknown still kinds"):
        maskstills.MaskStillMaker(photos, 64, mix={"photos": 1.0})
    with pytest.raises(ValueError, match="no material"):
        maskstills.MaskStillMaker(photos[3:], 64, mix={"photo": 1.0})
