"""Approach 2's output for a mask-head U-Net: its face mask compositing the tool's blur over the frame.

``composite_blur`` blurs each region that ``models.facemask.alpha_map`` keeps with the tool's Gaussian
(``blur.fast_gaussian``, sigma from ``facemask.region_sigma``) through the region's alpha; every other
pixel is returned bit-exact. ``MaskBlurAnonymizer`` is the frame-in, frame-out object the pipeline runs;
``unet_anonymizer`` picks it or the image-head ``models.unet.UNetAnonymizer`` by the model's head.
"""

from __future__ import annotations

import numpy as np

from fourfold.faceblur.models.facemask import MaskSettings, alpha_map, region_sigma
from fourfold.faceblur.tool.blur import fast_gaussian, kernel_size


def composite_blur(
    frame: np.ndarray, prob: np.ndarray, settings: MaskSettings, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(output frame, changed mask (H, W) bool) for an RGB uint8 ``frame`` and a face probability map
    ``prob`` (H, W): each kept region blurred with its own sigma through its alpha, all else untouched.
    ``scale``: frame pixels per network pixel (``min_area`` is in network pixels)."""
    alpha, regions = alpha_map(prob, settings, scale)
    out = frame.copy()
    h, w = frame.shape[:2]
    for region, core_box in regions:
        sigma = region_sigma(core_box, settings)
        ys, xs = np.nonzero(region)
        pad = kernel_size(sigma) // 2
        r0, r1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
        c0, c1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
        blurred = fast_gaussian(frame[r0:r1, c0:c1], sigma).astype(np.float32)
        a = np.where(region[r0:r1, c0:c1], alpha[r0:r1, c0:c1], 0.0)
        if blurred.ndim == 3:
            a = a[..., None]
        window = out[r0:r1, c0:c1]
        mixed = window.astype(np.float32) * (1 - a) + blurred * a
        # Where a is 0 the rounding gives the pixel back exactly.
        out[r0:r1, c0:c1] = np.clip(np.rint(mixed), 0, 255).astype(frame.dtype)
    return out, alpha > 0


class MaskBlurAnonymizer:
    """Frame in, frame out for a mask-head U-Net: its face probability at the working resolution
    (``size``, longer side; None = the calibrated size in the weights file), then ``composite_blur``.

    ``anonymize(frame)`` returns (output frame, changed mask (H, W) bool)."""

    name = "unet"

    def __init__(self, model, size: int | None = None):
        self.model = model.eval()
        self.settings = getattr(model, "mask_settings", None) or MaskSettings()
        self.size = int(size or self.settings.size)

    def anonymize(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from fourfold.faceblur.models.unet import face_probability

        prob, scale = face_probability(self.model, frame, self.size)
        return composite_blur(frame, prob, self.settings, scale)


def unet_anonymizer(model, size: int | None = None, change_threshold: float = 0.1):
    """The anonymiser for a loaded U-Net: ``MaskBlurAnonymizer`` for a mask head, else the paper's
    ``UNetAnonymizer`` (``size`` None = 256 there)."""
    if getattr(model, "head", "image") == "mask":
        return MaskBlurAnonymizer(model, size)
    from fourfold.faceblur.models.unet import UNetAnonymizer

    return UNetAnonymizer(model, size or 256, change_threshold)
