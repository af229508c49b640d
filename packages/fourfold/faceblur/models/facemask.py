"""Approach 2 as a segmentation network: the U-Net predicts a soft face mask, and its output frame is that
mask compositing the tool's blur over the input (issue 21).

Why not the paper's image head (``unet.UNet`` with ``head="image"``): a network that repaints every pixel
and is pasted wherever its output differs from the input changed 45-78 % of face-free photos and
anonymised 1 of 25 real faces; a mask is zero on a background exactly, and the blur inside it is the tool's
own operator, as strong as the default's.

- ``MaskSettings``: how a predicted probability map becomes a blurred frame (stored in the weights file);
- ``mask_losses``: binary cross-entropy and soft Dice on the mask, and the L1 distance between the frame the
  network outputs (its mask compositing the blurred frame over the input) and the teacher's frame;
- ``alpha_map`` and ``region_sigma``: the regions of a probability map that get blurred, and how strongly.
  Connected regions of ``prob >= floor`` whose core (``prob >= threshold``) holds ``min_area`` pixels are
  kept; alpha ramps from 0 at ``floor`` to 1 at ``threshold``; sigma = ``sigma_ratio`` x the smaller side
  of the face box the region implies (its core box / ``mask_scale``, the tool's mask geometry backwards).
The teacher's targets are built in ``data.maskstills``, the blur itself in ``tool.maskblur``.

Frames are uint8 RGB (H, W, 3); boxes (N, 4) x1 y1 x2 y2 in pixels; probabilities float in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# The tool's defaults (tool.pipeline.DEFAULT_MASK_SCALE / DEFAULT_SIGMA_RATIO; a test keeps them equal),
# repeated here because the model room imports no other room.
TOOL_MASK_SCALE = 1.6
TOOL_SIGMA_RATIO = 0.25


@dataclass(frozen=True)
class MaskSettings:
    """How a predicted mask becomes a blurred frame (stored in the weights file, fixed by calibration).

    threshold: probability from which a pixel is face (a region's core); floor: probability below which
    alpha is 0 (alpha ramps linearly in between); min_area: smallest core kept, in pixels of the network's
    input; size: the network's working resolution (longer side, pixels)."""

    threshold: float = 0.5
    floor: float = 0.3
    min_area: int = 12
    size: int = 512
    sigma_ratio: float = TOOL_SIGMA_RATIO
    mask_scale: float = TOOL_MASK_SCALE

    def __post_init__(self):
        if not 0.0 < self.floor < self.threshold < 1.0:
            raise ValueError(
                f"mask settings need 0 < floor < threshold < 1, got floor={self.floor}, "
                f"threshold={self.threshold}"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def mask_losses(logits, mask, image, blurred) -> dict:
    """The training losses, each a scalar tensor.

    ``logits`` (B, 1, H, W) of the face mask; ``mask`` (B, H, W) the teacher's in {0, 1}; ``image`` and
    ``blurred`` (B, 3, H, W) in [0, 1]: the input and the teacher's blurred frame.
    - ``bce``: mean binary cross-entropy of the mask;
    - ``dice``: 1 - soft Dice over the whole batch (1 - (2 sum(p m) + 1) / (sum p + sum m + 1)): faces
      cover a few percent of the pixels, so cross-entropy alone is content with a timid mask;
    - ``image``: mean L1 between the network's frame ``p * blurred + (1 - p) * image`` and the teacher's
      ``m * blurred + (1 - m) * image`` (per pixel it equals |p - m| |blurred - image|: a mask error
      weighted by how much it would change the picture)."""
    import torch
    from torch.nn import functional as F

    logits = logits[:, 0]
    prob = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, mask)
    dice = 1 - (2 * (prob * mask).sum() + 1) / (prob.sum() + mask.sum() + 1)
    p, m = prob.unsqueeze(1), mask.unsqueeze(1)
    out = p * blurred + (1 - p) * image
    target = m * blurred + (1 - m) * image
    return {"bce": bce, "dice": dice, "image": (out - target).abs().mean()}


def alpha_map(prob: np.ndarray, settings: MaskSettings, scale: float = 1.0) -> tuple[np.ndarray, list]:
    """(alpha float32 (H, W) in [0, 1], kept regions) of a probability map.

    A region is a connected component (8-neighbourhood) of ``prob >= floor`` whose core
    (``prob >= threshold``) holds at least ``min_area * scale**2`` pixels (``scale``: frame pixels per
    network pixel); each kept region is ``(label mask, core box x1 y1 x2 y2)``. Alpha ramps from 0 at
    ``floor`` to 1 at ``threshold`` inside kept regions and is 0 elsewhere."""
    import cv2

    prob = np.asarray(prob, np.float32)
    support = (prob >= settings.floor).astype(np.uint8)
    alpha = np.zeros(prob.shape, np.float32)
    if not support.any():
        return alpha, []
    count, labels = cv2.connectedComponents(support, connectivity=8)
    core = prob >= settings.threshold
    regions = []
    min_core = settings.min_area * scale**2
    for k in range(1, count):
        region = labels == k
        region_core = region & core
        if region_core.sum() < min_core:
            continue
        ys, xs = np.nonzero(region_core)
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        ramp = (prob[region] - settings.floor) / (settings.threshold - settings.floor)
        alpha[region] = np.clip(ramp, 0.0, 1.0)
        regions.append((region, box))
    return alpha, regions


def region_sigma(core_box, settings: MaskSettings) -> float:
    """The tool's sigma for a region: ``sigma_ratio`` x the smaller side of the face box it implies (the
    region's core box shrunk by ``mask_scale``, the tool's mask geometry run backwards)."""
    x1, y1, x2, y2 = core_box
    side = min(x2 - x1, y2 - y1) / settings.mask_scale
    return max(settings.sigma_ratio * side, 0.3)
