"""The faceblur page's helpers: boxes are drawn on a copy, in every image layout the tool keeps."""

import numpy as np
import pytest

from fourfold.web.pages.faceblur import BOX_COLOUR, overlay_boxes


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((20, 30, 3), np.uint8),
        np.zeros((20, 30), np.uint8),
        np.zeros((20, 30, 4), np.uint8),
        np.zeros((20, 30, 3), np.uint16),
    ],
)
def test_overlay_draws_on_a_copy_in_rgb(image):
    out = overlay_boxes(image, np.array([[2.0, 3.0, 12.0, 15.0]]))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert tuple(out[3, 6]) == BOX_COLOUR  # on the top edge
    assert out[8, 7].sum() == 0  # inside the box: untouched
    assert image.sum() == 0  # the input frame is never drawn on


def test_overlay_without_boxes_is_the_image():
    image = np.full((4, 5, 3), 7, np.uint8)
    assert np.array_equal(overlay_boxes(image, None), image)
