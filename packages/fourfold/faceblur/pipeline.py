"""One frame in, one anonymised frame out: detector + blur (approach 1) or U-Net (approach 2).

``make_pipeline(method, ...)`` returns a ``Pipeline``; ``pipeline(frame)`` gives a ``Result`` (the output
frame, the boxes that were anonymised (None for the U-Net) and the mask of changed pixels). ``reset()``
clears temporal state (the box hold) between clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fourfold.faceblur.blur import anonymize, check_frame, ellipse_mask

METHODS = ("yolo", "centerface", "unet")


@dataclass
class Result:
    frame: np.ndarray
    boxes: np.ndarray | None
    changed: np.ndarray


class DetectorPipeline:
    """Approach 1: detect faces, then anonymise their ellipses."""

    def __init__(self, detector, mode: str = "blur", **blur_kwargs):
        self.detector, self.mode, self.blur_kwargs = detector, mode, blur_kwargs
        self.name = detector.name

    def reset(self) -> None:
        if hasattr(self.detector, "reset"):
            self.detector.reset()

    def __call__(self, frame: np.ndarray) -> Result:
        frame = check_frame(frame)
        boxes, _ = self.detector.detect(frame)
        out = anonymize(frame, boxes, self.mode, **self.blur_kwargs)
        scale = self.blur_kwargs.get("mask_scale", 1.0)
        changed = ellipse_mask(frame.shape[:2], boxes, mask_scale=scale) > 0
        return Result(out, boxes, changed)


class UNetPipeline:
    """Approach 2: the U-Net outputs the frame; only changed pixels are pasted (no boxes)."""

    name = "unet"

    def __init__(self, anonymizer):
        self.anonymizer = anonymizer

    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray) -> Result:
        frame = check_frame(frame)
        out, changed = self.anonymizer.anonymize(frame)
        return Result(out, None, changed)


def make_pipeline(
    method: str,
    *,
    mode: str = "blur",
    threshold: float | None = None,
    hold: int = 0,
    weights=None,
    unet_size: int = 256,
    change_threshold: float = 0.1,
    max_box_frac: float | None = None,
    **blur_kwargs,
):
    """Build the pipeline for ``method`` (``yolo``, ``centerface`` or ``unet``)."""
    if method in ("yolo", "centerface"):
        from fourfold.faceblur.detectors import make_detector

        detector = make_detector(
            method, weights=weights, threshold=threshold, hold=hold, max_box_frac=max_box_frac
        )
        return DetectorPipeline(detector, mode, **blur_kwargs)
    if method == "unet":
        if hold:
            raise ValueError("--hold applies to detector methods (yolo, centerface), not to the U-Net")
        from fourfold.faceblur.detectors import packaged_weights
        from fourfold.faceblur.unet import UNetAnonymizer, load_unet

        model = load_unet(weights or packaged_weights("unet_mse.pt"))
        return UNetPipeline(UNetAnonymizer(model, size=unet_size, change_threshold=change_threshold))
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
