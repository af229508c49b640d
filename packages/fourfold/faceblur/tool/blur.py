"""Face anonymisation operators: elliptical masks and what fills them (Gaussian blur, mosaic, solid).

Boxes are float arrays of shape (N, 4) in pixel coordinates ``x1, y1, x2, y2`` (pixel ``(row i, col j)``
covers ``[j, j+1) x [i, i+1)``, so its centre is ``(j + 0.5, i + 0.5)``). Frames are uint8 or uint16 arrays
of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); every channel is treated alike (callers keep alpha out).
Every operator is deterministic and returns a new frame of the input's dtype; the input is never modified.

Two Gaussian variants:
- ``paper``: one Gaussian per face, ``sigma = sigma_ratio * min(w, h)`` of that box, kernel
  ``2 * ceil(3 sigma) + 1``, pasted through that face's elliptical mask (optionally feathered).
  With ``fast=True`` (the tool's default) a face whose sigma is at least ``3 * FAST_MIN_FACTOR`` px is
  blurred at reduced resolution (``fast_gaussian``: area downscale by ``f = floor(sigma / 3)``, Gaussian,
  bilinear upscale, the three stages' variances adding up to sigma^2): the same strength, ~f^2 cheaper.
- ``code``: the authors' script: one kernel per frame, ``k`` = the largest box side in the frame forced odd,
  the whole frame blurred once with OpenCV's ``GaussianBlur(k, k, sigma=0)``, pasted through filled
  inscribed ellipses with a hard edge.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MODES = ("blur", "code", "mosaic", "solid")


def as_boxes(boxes) -> np.ndarray:
    """Validate boxes and return them as a float64 (N, 4) array (an empty input gives shape (0, 4))."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"boxes must have shape (N, 4) as x1, y1, x2, y2; got shape {arr.shape}")
    arr = arr[:, :4]
    if not np.all(np.isfinite(arr)):
        raise ValueError("boxes contain NaN or infinite coordinates")
    if np.any(arr[:, 2] < arr[:, 0]) or np.any(arr[:, 3] < arr[:, 1]):
        raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1")
    return arr


def check_frame(frame) -> np.ndarray:
    """Validate a frame: uint8 or uint16, (H, W) or (H, W, C) with C in 1, 3, 4."""
    frame = np.asarray(frame)
    if frame.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"frames must be uint8 or uint16 images, got dtype {frame.dtype}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"frames must have shape (H, W) or (H, W, 3), got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"empty frame of shape {frame.shape}")
    return frame


def scale_boxes(boxes, mask_scale: float) -> np.ndarray:
    """Scale each box about its centre by ``mask_scale`` (1.0 = unchanged)."""
    boxes = as_boxes(boxes)
    if mask_scale <= 0:
        raise ValueError(f"mask_scale must be positive, got {mask_scale}")
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * mask_scale
    return np.concatenate([centre - half, centre + half], axis=1)


def ellipse_alpha(
    shape: tuple[int, int], box, feather: float = 0.0
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Alpha of the ellipse inscribed in one box, on the box's bounding window of the image.

    Returns ``(window, alpha)``: ``alpha`` (float32 in [0, 1]) covers ``image[window]``. A pixel is inside
    when its centre satisfies ``((x - cx) / a)^2 + ((y - cy) / b)^2 <= 1``. With ``feather > 0`` alpha ramps
    from 0 at the ellipse edge to 1 at normalised radius ``1 - feather``, so it never leaves the ellipse.
    """
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    j0, j1 = max(0, math.floor(x1)), min(w, math.ceil(x2))
    i0, i1 = max(0, math.floor(y1)), min(h, math.ceil(y2))
    window = (slice(i0, max(i0, i1)), slice(j0, max(j0, j1)))
    a, b = (x2 - x1) / 2, (y2 - y1) / 2
    if i1 <= i0 or j1 <= j0 or a <= 0 or b <= 0:
        return window, np.zeros((max(0, i1 - i0), max(0, j1 - j0)), np.float32)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    xs = (np.arange(j0, j1) + 0.5 - cx) / a
    ys = (np.arange(i0, i1) + 0.5 - cy) / b
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    if feather > 0:
        alpha = np.clip((1.0 - radius) / feather, 0.0, 1.0)
    else:
        alpha = (radius <= 1.0).astype(np.float64)
    return window, alpha.astype(np.float32)


def ellipse_mask(shape: tuple[int, int], boxes, mask_scale: float = 1.0, feather: float = 0.0) -> np.ndarray:
    """Union (pixelwise max) of the ellipses inscribed in the scaled boxes: float32 (H, W) in [0, 1]."""
    mask = np.zeros(shape[:2], np.float32)
    for box in scale_boxes(boxes, mask_scale):
        window, alpha = ellipse_alpha(shape[:2], box, feather)
        np.maximum(mask[window], alpha, out=mask[window])
    return mask


def gaussian_sigma(box, sigma_ratio: float = 0.15) -> float:
    """The paper rule: blur strength proportional to the smaller side of the face box (pixels)."""
    x1, y1, x2, y2 = box[:4]
    return max(sigma_ratio * min(x2 - x1, y2 - y1), 0.3)


def kernel_size(sigma: float) -> int:
    """Odd Gaussian kernel covering +-3 sigma: ``2 * ceil(3 sigma) + 1``."""
    return 2 * math.ceil(3 * sigma) + 1


def code_kernel_size(boxes) -> int:
    """The authors' one-kernel-per-frame rule: the largest integer box side in the frame, forced odd."""
    boxes = as_boxes(boxes)
    if len(boxes) == 0:
        return 0
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    k = max(int(sides.max()), 1)
    return k if k % 2 == 1 else k + 1


def opencv_sigma(k: int) -> float:
    """The sigma OpenCV derives for ``GaussianBlur`` with kernel size ``k`` and ``sigma=0``."""
    return 0.3 * ((k - 1) / 2 - 1) + 0.8


def _composite(frame: np.ndarray, filled: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * filled + (1 - alpha) * frame``, exact where alpha is 0 or 1; the frame's dtype."""
    if alpha.ndim < frame.ndim:
        alpha = alpha[..., None]
    out = frame.astype(np.float32) * (1 - alpha) + filled.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, np.iinfo(frame.dtype).max).astype(frame.dtype)


FAST_MIN_FACTOR = 2  # fast_gaussian works at reduced resolution only when it saves at least 2x per side


def fast_factor(sigma: float) -> int:
    """The downscale factor of ``fast_gaussian``: ``floor(sigma / 3)`` (1 = exact blur)."""
    f = int(sigma // 3)
    return f if f >= FAST_MIN_FACTOR else 1


def fast_gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of std ``sigma`` px computed at 1/f resolution (f = ``fast_factor(sigma)``).

    Area downscaling (a box of f px: variance f^2/12), a Gaussian of std ``s`` low-resolution px (variance
    (s f)^2) and bilinear upscaling (a triangle of half-width f: variance f^2/6) add up to sigma^2, so
    ``s = sqrt(sigma^2 - f^2 / 4) / f`` (about 2.96). Same shape and dtype as ``image``; reflected borders.
    """
    f = fast_factor(sigma)
    h, w = image.shape[:2]
    if f == 1 or min(h, w) < 2 * f:
        k = kernel_size(sigma)
        return cv2.GaussianBlur(image, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
    small = cv2.resize(image, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
    s = math.sqrt(max(sigma**2 - f**2 / 4, 0.25)) / f
    k = kernel_size(s)
    small = cv2.GaussianBlur(small, (k, k), s, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


def _padded_window(shape, window, pad: int) -> tuple[slice, slice]:
    (rows, cols), (h, w) = window, shape[:2]
    return (
        slice(max(0, rows.start - pad), min(h, rows.stop + pad)),
        slice(max(0, cols.start - pad), min(w, cols.stop + pad)),
    )


def blur_paper(frame, boxes, *, mask_scale=1.0, feather=0.0, sigma_ratio=0.15, fast=False) -> np.ndarray:
    """One Gaussian per face (sigma from that face's smaller side) pasted through its ellipse; ``fast``
    computes large blurs at reduced resolution (``fast_gaussian``)."""
    frame = check_frame(frame)
    out = frame.copy()
    boxes = as_boxes(boxes)
    for box, scaled in zip(boxes, scale_boxes(boxes, mask_scale)):
        window, alpha = ellipse_alpha(frame.shape[:2], scaled, feather)
        if alpha.size == 0 or not alpha.any():
            continue
        sigma = gaussian_sigma(box, sigma_ratio)
        k = kernel_size(sigma)
        # Blur a padded crop of the *original* frame so the result does not depend on other faces' order.
        outer = _padded_window(frame.shape, window, k // 2)
        if fast:
            crop = fast_gaussian(frame[outer], sigma)
        else:
            crop = cv2.GaussianBlur(frame[outer], (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
        inner = (
            slice(window[0].start - outer[0].start, window[0].stop - outer[0].start),
            slice(window[1].start - outer[1].start, window[1].stop - outer[1].start),
        )
        blurred = crop[inner].reshape(out[window].shape)
        out[window] = _composite(out[window], blurred, alpha)
    return out


def code_mask(shape: tuple[int, int], boxes) -> np.ndarray:
    """The authors' mask: filled inscribed ellipses drawn by OpenCV on integer geometry (uint8 0/1)."""
    mask = np.zeros(shape[:2], np.uint8)
    for x1, y1, x2, y2 in as_boxes(boxes).astype(int):
        centre = ((x1 + x2) // 2, (y1 + y2) // 2)
        axes = (max((x2 - x1) // 2, 0), max((y2 - y1) // 2, 0))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)
    return mask


def blur_code(frame, boxes) -> np.ndarray:
    """The authors' variant: one frame-wide Gaussian (k = largest box side, odd) through a hard mask."""
    frame = check_frame(frame)
    boxes = as_boxes(boxes)
    if len(boxes) == 0:
        return frame.copy()
    k = code_kernel_size(boxes)
    blurred = cv2.GaussianBlur(frame, (k, k), 0)
    mask = code_mask(frame.shape, boxes).astype(bool)
    out = frame.copy()
    out[mask] = blurred[mask]
    return out


def mosaic(frame, boxes, *, mask_scale=1.0, feather=0.0, cells=8) -> np.ndarray:
    """Pixelate each face with cells relative to its size: ``cells`` cells across its smaller side."""
    frame = check_frame(frame)
    if cells < 1:
        raise ValueError(f"mosaic cells must be >= 1, got {cells}")
    out = frame.copy()
    boxes = as_boxes(boxes)
    for box, scaled in zip(boxes, scale_boxes(boxes, mask_scale)):
        window, alpha = ellipse_alpha(frame.shape[:2], scaled, feather)
        if alpha.size == 0 or not alpha.any():
            continue
        cell = max(1.0, min(box[2] - box[0], box[3] - box[1]) / cells)
        crop = frame[window]
        h, w = crop.shape[:2]
        small = cv2.resize(
            crop, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA
        )
        pixelated = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).reshape(crop.shape)
        out[window] = _composite(out[window], pixelated, alpha)
    return out


def solid(frame, boxes, *, mask_scale=1.0, feather=0.0, color=(0, 0, 0)) -> np.ndarray:
    """Fill each face ellipse with one colour."""
    frame = check_frame(frame)
    alpha = ellipse_mask(frame.shape[:2], boxes, mask_scale, feather)
    fill = np.empty_like(frame)
    color = np.asarray(color, np.int64) * (257 if frame.dtype == np.uint16 else 1)  # 255 -> 65535
    fill[...] = color[: frame.shape[2]] if frame.ndim == 3 else color[0]
    return _composite(frame, fill, alpha)


def anonymize(
    frame,
    boxes,
    mode: str = "blur",
    *,
    mask_scale: float = 1.0,
    feather: float = 0.0,
    sigma_ratio: float = 0.15,
    mosaic_cells: int = 8,
    color=(0, 0, 0),
    fast: bool = False,
) -> np.ndarray:
    """Apply one operator (``blur`` = paper Gaussian, ``code``, ``mosaic``, ``solid``) to the faces."""
    if mode == "blur":
        return blur_paper(
            frame, boxes, mask_scale=mask_scale, feather=feather, sigma_ratio=sigma_ratio, fast=fast
        )
    if mode == "code":
        return blur_code(frame, scale_boxes(boxes, mask_scale))
    if mode == "mosaic":
        return mosaic(frame, boxes, mask_scale=mask_scale, feather=feather, cells=mosaic_cells)
    if mode == "solid":
        return solid(frame, boxes, mask_scale=mask_scale, feather=feather, color=color)
    raise ValueError(f"unknown anonymisation mode {mode!r}; choose one of {MODES}")
