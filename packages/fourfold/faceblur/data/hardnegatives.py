"""A hard-negative round for approach 1's YOLO: where a trained detector fires on *training* photos but the
pseudo-labels see no face, crops around those detections become training stills (with the photo's real
faces still labelled), so the next fine-tune learns that those textures (coins, logos, patterns) are not
faces.

Only training photos are mined (``realstills.split_photos``' train part, the evaluation manifest's files
already removed): never the validation photos, never the real-photo evaluation set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fourfold.faceblur.tool.boxes import box_areas, intersection_areas

log = logging.getLogger(__name__)

MIN_PX = 12  # smaller false detections are left alone: they blur almost nothing, and may be unlabelled faces
OVERLAP = 0.3  # a detection sharing this share of its area with a face or an ignore region is not false
COVERS = 0.5  # ... nor one holding this share of a face's area (a box around a head)


@dataclass(frozen=True)
class HardNegative:
    """A false detection: the index of its photo in the mined list, its box (x1 y1 x2 y2) and score."""

    photo: int
    box: tuple[float, float, float, float]
    score: float


def false_detections(boxes, faces, ignore, min_px: float = MIN_PX) -> np.ndarray:
    """Mask (N,) of ``boxes`` that are false: at least ``min_px`` tall, sharing less than ``OVERLAP`` of
    their area with every labelled face and ignore region, and holding less than ``COVERS`` of any face."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    known = np.concatenate(
        [np.asarray(faces, float).reshape(-1, 4), np.asarray(ignore, float).reshape(-1, 4)]
    )
    ok = boxes[:, 3] - boxes[:, 1] >= min_px
    if not len(known) or not len(boxes):
        return ok
    inter = intersection_areas(boxes, known)
    own, theirs = box_areas(boxes)[:, None], box_areas(known)[None, :]
    touches = (inter >= OVERLAP * np.maximum(own, 1e-9)) | (inter >= COVERS * np.maximum(theirs, 1e-9))
    return ok & ~touches.any(axis=1)


def mine(photos, detector, min_px: float = MIN_PX) -> list[HardNegative]:
    """Every false detection of ``detector`` (``detect(rgb) -> (boxes, scores)``) on ``photos``
    (``realstills.LabelledPhoto``, their ignore regions already painted out)."""
    found = []
    for i, p in enumerate(photos):
        boxes, scores = detector.detect(p.image)
        false = false_detections(boxes, p.faces, p.ignore, min_px)
        found += [
            HardNegative(i, tuple(float(v) for v in b), float(s)) for b, s in zip(boxes[false], scores[false])
        ]
    return found


def summary(photos, hard: list[HardNegative]) -> str:
    """One line: how many false detections, on how many files, from which packages."""
    files = {photos[h.photo].sha256 for h in hard}
    packages: dict[str, int] = {}
    for h in hard:
        name = photos[h.photo].key.split(":", 1)[0]
        packages[name] = packages.get(name, 0) + 1
    return f"{len(hard)} false detections on {len(files)} files ({packages})"
