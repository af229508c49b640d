"""End-to-end speed, decode and encode included: ``python -m fourfold.faceblur.bench [--frames N]``.

For a generated 640x360 and a 1280x720 clip, every method of ``fourfold-blur`` (yolo, centerface, unet)
runs in this process through ``anonymize_path`` (model loading included). The baseline is the ``deface``
command (CenterFace, OpenCV backend) on the same clip, run as a subprocess; its interpreter start-up (a
``--version`` run) is subtracted, its model loading is not. Prints frames per second (median of
``--repeats`` runs) and the ratio to deface.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ((640, 360), (1280, 720))


def make_clip_file(folder: Path, width: int, height: int, frames: int) -> Path:
    from fourfold.faceblur.synthetic import make_clip
    from fourfold.faceblur.video import write_video

    clip = make_clip(0, "test", size=(height, width), n_frames=frames, n_tracks=4, face_px=(20, height // 4))
    return write_video(folder / f"clip_{width}x{height}.mp4", clip.frames, fps=clip.fps)


def time_ours(clip: Path, out: Path, method: str) -> float:
    from fourfold.faceblur.cli import anonymize_path

    t0 = time.perf_counter()
    anonymize_path(clip, out, method=method, progress=False)
    return time.perf_counter() - t0


def deface_startup() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "deface.deface", "--version"], check=True, capture_output=True)
    return time.perf_counter() - t0


def time_deface(clip: Path, out: Path, startup: float) -> float:
    cmd = [sys.executable, "-m", "deface.deface", str(clip), "-o", str(out), "--backend", "opencv"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return max(time.perf_counter() - t0 - startup, 1e-6)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=30, help="frames per clip (default 30)")
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is kept")
    p.add_argument("--methods", default="yolo,centerface,unet", help="comma-separated methods")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = p.parse_args(argv)

    import torch

    from fourfold.core.environment import configure_environment

    configure_environment()
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    try:
        import deface  # noqa: F401

        have_deface = True
    except ImportError:
        have_deface = False
        print("deface is not installed: no baseline, fps only")
    with tempfile.TemporaryDirectory(prefix="faceblur-bench-") as tmp:
        tmp = Path(tmp)
        startup = statistics.median(deface_startup() for _ in range(args.repeats)) if have_deface else 0.0
        print(
            f"{'clip':>10} {'method':>12} {'fps':>8} {'x deface':>9}   (median of {args.repeats}, "
            f"{args.frames} frames, decode+encode included)"
        )
        for width, height in SIZES:
            clip = make_clip_file(tmp, width, height, args.frames)
            base = None
            if have_deface:
                secs = statistics.median(
                    time_deface(clip, tmp / "d.mp4", startup) for _ in range(args.repeats)
                )
                base = args.frames / secs
                print(f"{width}x{height:<5} {'deface':>12} {base:8.1f} {1.0:9.2f}")
            for method in methods:
                time_ours(clip, tmp / "warm.mp4", method)  # load weights, warm caches
                secs = statistics.median(time_ours(clip, tmp / "o.mp4", method) for _ in range(args.repeats))
                fps = args.frames / secs
                ratio = f"{fps / base:9.2f}" if base else f"{'n/a':>9}"
                print(f"{width}x{height:<5} {method:>12} {fps:8.1f} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
