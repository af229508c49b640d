"""Box geometry shared by the detectors and the measurements: areas, pairwise intersections and IoU.
Boxes are (N, 4) arrays of x1, y1, x2, y2 in pixels."""

from __future__ import annotations

import numpy as np


def box_areas(boxes) -> np.ndarray:
    """Areas (N,) of x1 y1 x2 y2 boxes."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def intersection_areas(a, b) -> np.ndarray:
    """Pairwise intersection areas between boxes ``a`` (N, 4) and ``b`` (M, 4): (N, M)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(ix, 0, None) * np.clip(iy, 0, None)


def iou_matrix(a, b) -> np.ndarray:
    """Pairwise IoU between boxes ``a`` (N, 4) and ``b`` (M, 4): (N, M)."""
    inter = intersection_areas(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
