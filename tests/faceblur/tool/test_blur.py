"""Blur geometry and kernel rules, checked against closed forms and hand-built references."""

import math

import cv2
import numpy as np
import pytest

from fourfold.faceblur.tool import blur


def _random_frame(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("scale", [0.7, 1.0, 1.3])
def test_mask_inside_scaled_ellipse_and_area(scale):
    box = np.array([[30.0, 20.0, 90.0, 100.0]])
    mask = blur.ellipse_mask((120, 160), box, mask_scale=scale)
    cx, cy, a, b = 60.0, 60.0, 30.0 * scale, 40.0 * scale
    ii, jj = np.nonzero(mask > 0)
    r = ((jj + 0.5 - cx) / a) ** 2 + ((ii + 0.5 - cy) / b) ** 2
    assert np.all(r <= 1.0 + 1e-9)
    # Every pixel whose centre is inside is in the mask (brute force over the whole image).
    yy, xx = np.mgrid[0:120, 0:160]
    inside = ((xx + 0.5 - cx) / a) ** 2 + ((yy + 0.5 - cy) / b) ** 2 <= 1
    inside_visible = inside  # the scaled ellipse stays within the frame for these scales
    assert np.array_equal(mask > 0, inside_visible)
    assert abs(mask.sum() - math.pi * a * b) / (math.pi * a * b) < 0.03


def test_feathered_mask_stays_inside_and_ramps():
    box = np.array([[10.0, 10.0, 70.0, 70.0]])
    hard = blur.ellipse_mask((80, 80), box)
    soft = blur.ellipse_mask((80, 80), box, feather=0.3)
    assert np.all(soft[hard == 0] == 0)
    assert soft.max() == 1.0 and 0 < soft[hard > 0].min() < 1
    assert soft[40, 40] == 1.0


def test_kernel_rule():
    box = np.array([0, 0, 40, 100])
    sigma = blur.gaussian_sigma(box, 0.15)
    assert sigma == pytest.approx(6.0)
    k = blur.kernel_size(sigma)
    assert k % 2 == 1 and k == 2 * 18 + 1
    assert blur.code_kernel_size([[0, 0, 40, 100], [5, 5, 20, 30]]) == 101
    assert blur.code_kernel_size([[0, 0, 41, 40]]) == 41
    assert blur.code_kernel_size([[0, 0, 40, 20]]) == 41
    # OpenCV's sigma for sigma=0 equals its documented formula: check it against the kernel it builds.
    k = 31
    expected = cv2.getGaussianKernel(k, 0).ravel()
    x = np.arange(k) - (k - 1) / 2
    ours = np.exp(-(x**2) / (2 * blur.opencv_sigma(k) ** 2))
    np.testing.assert_allclose(ours / ours.sum(), expected, atol=1e-6)


def _reference_gaussian(image, k, sigma):
    """Separable Gaussian with reflect-101 borders, in plain numpy."""
    x = np.arange(k) - (k - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    pad = k // 2
    padded = np.pad(image.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    rows = sum(g[i] * padded[i : i + image.shape[0]] for i in range(k))
    return sum(g[i] * rows[:, i : i + image.shape[1]] for i in range(k))


def test_code_compatible_equals_hand_built_reference():
    frame = _random_frame()
    boxes = np.array([[20, 30, 50, 70], [100, 10, 121, 30]])
    out = blur.blur_code(frame, boxes)
    k = 41  # largest side 40 -> odd 41
    ref_blur = _reference_gaussian(frame, k, blur.opencv_sigma(k))
    yy, xx = np.mgrid[0:120, 0:160]
    ref_mask = np.zeros((120, 160), bool)
    for x1, y1, x2, y2 in boxes:
        cx, cy, a, b = (x1 + x2) // 2, (y1 + y2) // 2, (x2 - x1) // 2, (y2 - y1) // 2
        ref_mask |= ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1
    mask = blur.code_mask(frame.shape, boxes).astype(bool)
    # OpenCV rasterises ellipse outlines with polylines: allow disagreement on the boundary only.
    boundary = cv2.dilate(ref_mask.astype(np.uint8), np.ones((3, 3))) != cv2.erode(
        ref_mask.astype(np.uint8), np.ones((3, 3))
    )
    assert np.array_equal(mask[~boundary], ref_mask[~boundary])
    # OpenCV blurs uint8 in fixed point: within 2 grey levels of the float reference.
    assert float(np.abs(out[mask].astype(float) - ref_blur[mask]).max()) <= 2.0
    assert np.array_equal(out[~mask], frame[~mask])


def test_paper_blur_changes_only_the_ellipse_and_matches_gaussian_inside():
    frame = _random_frame()
    box = np.array([[40.0, 30.0, 100.0, 90.0]])
    out = blur.blur_paper(frame, box, sigma_ratio=0.1)
    mask = blur.ellipse_mask(frame.shape[:2], box) > 0
    assert np.array_equal(out[~mask], frame[~mask])
    sigma = 6.0
    ref = _reference_gaussian(frame, blur.kernel_size(sigma), sigma)
    assert float(np.abs(out[mask].astype(float) - ref[mask]).max()) <= 2.0
    assert out[mask].std() < frame[mask].std() / 3
    assert np.array_equal(frame, _random_frame())  # input untouched


def test_mosaic_cells_relative_to_face_and_solid():
    frame = _random_frame(200, 200)
    box = np.array([[0.0, 0.0, 200.0, 200.0]])
    out = blur.mosaic(frame, box, mask_scale=2.0, cells=4)  # ellipse covers the whole frame
    for i in range(4):
        for j in range(4):
            cell = out[50 * i : 50 * i + 50, 50 * j : 50 * j + 50].reshape(-1, 3)
            assert np.all(cell == cell[0])
            mean = frame[50 * i : 50 * i + 50, 50 * j : 50 * j + 50].reshape(-1, 3).mean(0)
            assert float(np.abs(cell[0] - mean).max()) <= 1.0
    solid = blur.solid(frame, [[50, 50, 150, 150]], color=(255, 0, 0))
    mask = blur.ellipse_mask((200, 200), [[50, 50, 150, 150]]) > 0
    assert np.all(solid[mask] == [255, 0, 0]) and np.array_equal(solid[~mask], frame[~mask])


def test_no_boxes_is_identity_and_bad_input_is_named():
    frame = _random_frame()
    for mode in blur.MODES:
        assert np.array_equal(blur.anonymize(frame, np.zeros((0, 4)), mode), frame)
    with pytest.raises(ValueError, match="mode"):
        blur.anonymize(frame, [], "swirl")
    with pytest.raises(ValueError, match="uint8"):
        blur.anonymize(frame.astype(float), [], "blur")
    with pytest.raises(ValueError, match="x2 >= x1"):
        blur.anonymize(frame, [[10, 10, 5, 20]], "blur")


def test_boxes_partly_outside_the_frame():
    frame = _random_frame()
    out = blur.anonymize(frame, [[-20, -20, 30, 30], [150, 100, 200, 160]], "blur")
    assert out.shape == frame.shape and not np.array_equal(out, frame)
