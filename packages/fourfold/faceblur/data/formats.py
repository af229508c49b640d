"""Real face datasets and converters: WIDER FACE and FDDB annotations, YOLO labels, U-Net triplets.

Nothing here downloads: the parsers read the files a user points ``faceblur.data_root`` to.
Formats:
- WIDER ``wider_face_split/wider_face_{train,val}_bbx_gt.txt``: a path line, a count line, then one line per
  face ``x y w h blur expression illumination invalid occlusion pose``; a count of 0 is followed by one dummy
  line of zeros.
- FDDB ``FDDB-folds/FDDB-fold-XX-ellipseList.txt``: a path line (no extension), a count line, then
  ``major_radius minor_radius angle(rad) cx cy 1`` per face.
- YOLO labels: one txt per image, ``class cx cy w h`` normalised to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fourfold.faceblur.tool.blur import as_boxes, blur_paper, ellipse_mask


@dataclass
class FaceRecord:
    """One annotated image: its path under the dataset's image folder and its face boxes (x1, y1, x2, y2)."""

    path: str
    boxes: np.ndarray
    ellipses: np.ndarray | None = None  # FDDB only: (N, 5) major, minor, angle, cx, cy
    flags: np.ndarray = field(default_factory=lambda: np.zeros((0, 6), int))  # WIDER attributes per face


class AnnotationError(ValueError):
    """An annotation file that does not follow its dataset's format; the message names file and line."""


def _lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"annotation file {path} does not exist; point faceblur.data_root at the dataset"
        )
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def _count(lines: list[str], i: int, path) -> int:
    try:
        count = int(lines[i])
    except (IndexError, ValueError) as err:
        got = lines[i] if i < len(lines) else "end of file"
        raise AnnotationError(f"{path}:{i + 1}: expected a face count, got {got!r}") from err
    if count < 0:
        raise AnnotationError(f"{path}:{i + 1}: negative face count {count}")
    return count


def _numbers(lines: list[str], i: int, n: int, path) -> list[float]:
    if i >= len(lines):
        raise AnnotationError(f"{path}: file ends at line {i + 1} while a face line was expected")
    parts = lines[i].split()
    try:
        values = [float(p) for p in parts[:n]]
    except ValueError as err:
        raise AnnotationError(f"{path}:{i + 1}: expected {n} numbers, got {lines[i]!r}") from err
    if len(values) < n:
        raise AnnotationError(f"{path}:{i + 1}: expected {n} numbers, got {len(values)}: {lines[i]!r}")
    return values


def parse_wider(path: str | Path, *, drop_invalid: bool = True, min_size: float = 0.0) -> list[FaceRecord]:
    """Parse a WIDER FACE ``*_bbx_gt.txt`` file; invalid faces and those under ``min_size`` are dropped."""
    lines = _lines(path)
    records, i = [], 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        image = lines[i]
        count = _count(lines, i + 1, path)
        i += 2
        rows = [_numbers(lines, i + k, 10, path) for k in range(max(count, 1))]
        i += max(count, 1)  # a count of 0 is followed by one dummy line
        rows = np.asarray(rows[:count], float).reshape(-1, 10)
        keep = np.ones(len(rows), bool)
        if drop_invalid:
            keep &= rows[:, 7] == 0
        keep &= (rows[:, 2] >= max(min_size, 1e-9)) & (rows[:, 3] >= max(min_size, 1e-9))
        rows = rows[keep]
        boxes = np.column_stack([rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]])
        records.append(FaceRecord(image, boxes.reshape(-1, 4), flags=rows[:, 4:10].astype(int)))
    return records


def ellipse_to_box(major: float, minor: float, angle: float, cx: float, cy: float) -> np.ndarray:
    """Axis-aligned bounding box of an ellipse with semi-axis ``major`` at ``angle`` (radians from +x)."""
    c, s = math.cos(angle), math.sin(angle)
    half_w = math.hypot(major * c, minor * s)
    half_h = math.hypot(major * s, minor * c)
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


def parse_fddb(path: str | Path, *, extension: str = ".jpg") -> list[FaceRecord]:
    """Parse an FDDB ``*-ellipseList.txt`` fold; boxes bound the annotated ellipses."""
    lines = _lines(path)
    records, i = [], 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        image = lines[i] + extension
        count = _count(lines, i + 1, path)
        ellipses = np.asarray([_numbers(lines, i + 2 + k, 5, path) for k in range(count)], float).reshape(
            -1, 5
        )
        i += 2 + count
        boxes = np.asarray([ellipse_to_box(*e) for e in ellipses]).reshape(-1, 4)
        records.append(FaceRecord(image, boxes, ellipses=ellipses))
    return records


def yolo_label_lines(boxes, width: int, height: int, class_id: int = 0) -> list[str]:
    """YOLO label lines ``class cx cy w h`` (normalised), boxes clipped to the image, empty ones dropped."""
    boxes = as_boxes(boxes).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    lines = []
    for x1, y1, x2, y2 in boxes:
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        lines.append(
            f"{class_id} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
        )
    return lines


def parse_yolo_labels(path: str | Path, width: int, height: int) -> np.ndarray:
    """Read a YOLO label file back to pixel boxes (N, 4); the inverse of ``yolo_label_lines``."""
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        return np.zeros((0, 4))
    arr = np.asarray(rows, float)[:, 1:5]
    cx, cy, w, h = arr[:, 0] * width, arr[:, 1] * height, arr[:, 2] * width, arr[:, 3] * height
    return np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def write_yolo_split(samples: Iterable[tuple[np.ndarray, np.ndarray]], root: str | Path, split: str) -> int:
    """Write ``root/images/<split>/NNNNNN.png`` and ``root/labels/<split>/NNNNNN.txt`` (empty for no face).

    Returns the number of images written.
    """
    import cv2

    root = Path(root)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    n = 0
    for n, (image, boxes) in enumerate(samples, start=1):
        name = f"{n - 1:06d}"
        cv2.imwrite(str(root / "images" / split / f"{name}.png"), image[..., ::-1])
        lines = yolo_label_lines(boxes, image.shape[1], image.shape[0])
        (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return n


def write_yolo_yaml(root: str | Path, splits: dict[str, str] | None = None) -> Path:
    """The dataset yaml ultralytics reads (one class: face)."""
    root = Path(root)
    splits = splits or {"train": "images/train", "val": "images/val"}
    text = f"path: {root.resolve()}\n" + "".join(f"{k}: {v}\n" for k, v in splits.items())
    text += "names:\n  0: face\n"
    path = root / "data.yaml"
    path.write_text(text)
    return path


def unet_triplet(
    image, boxes, *, sigma_ratio: float = 0.15, mask_scale: float = 1.0, loss_mask_scale: float = 1.3
):
    """(input, target, mask) for the U-Net: target = the faces blurred by the paper operator (ellipses
    scaled by ``mask_scale``); mask (float32 (H, W) in [0, 1]) = those ellipses dilated by
    ``loss_mask_scale``, where the loss is weighted up."""
    target = blur_paper(image, boxes, sigma_ratio=sigma_ratio, mask_scale=mask_scale)
    mask = ellipse_mask(image.shape[:2], boxes, mask_scale=loss_mask_scale * mask_scale)
    return image, target, mask


def load_records(records: Iterable[FaceRecord], image_root: str | Path):
    """Yield (RGB image, boxes) per record, images read under ``image_root``; a missing image raises."""
    import cv2

    image_root = Path(image_root)
    for record in records:
        path = image_root / record.path
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"image {path} listed in the annotations is missing or unreadable")
        yield image[..., ::-1].copy(), record.boxes
