"""End-to-end speed against deface: ``python -m fourfold.faceblur.bench [--frames N] [--repeats R]``.

For a generated 640x360 and a 1280x720 clip (faces walking), each tool runs as a fresh command, the way a
user runs it: ``deface`` 1.5 (CenterFace, OpenCV backend, its defaults) and ``fourfold-blur --method M``.
Every run decodes, detects, blurs and encodes the whole clip. Two figures per tool, both from the same
runs, in the same process tree, interleaved (deface, ours, deface, ours, ...) so that the load of a shared
machine hits both alike:
- *with start-up*: frames / wall time of the whole command (interpreter, imports, model loading included);
- *without start-up*: the per-frame cost, (time for N frames - time for 1 frame) / (N - 1).
The ratio to deface is computed within each repeat and the median over repeats is printed.
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
    from fourfold.faceblur.data.synthetic import make_clip
    from fourfold.faceblur.tool.video import write_video

    clip = make_clip(0, "test", size=(height, width), n_frames=frames, n_tracks=4, face_px=(20, height // 4))
    return write_video(folder / f"clip_{width}x{height}_{frames}.mp4", clip.frames, fps=clip.fps)


def command(tool: str, clip: Path, out: Path) -> list[str]:
    if tool == "deface":
        return [sys.executable, "-m", "deface.deface", str(clip), "-o", str(out), "--backend", "opencv"]
    ours = [sys.executable, "-m", "fourfold.faceblur.tool.cli", str(clip), "-o", str(out)]
    method = ["--method", "yolo", "--small-faces"] if tool == "yolo_small" else ["--method", tool]
    return [*ours, *method, "--quiet", "--overwrite"]  # each repeat writes the same output again


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {proc.stderr.strip()[-500:]}")
    return seconds


def measure(tools: list[str], clips: tuple[Path, Path], frames: int, repeats: int, tmp: Path) -> dict:
    """{tool: {"with": [fps per repeat], "without": [...], "ratio_with": [...], "ratio_without": [...]}}."""
    long_clip, one_frame = clips
    res = {t: {"with": [], "without": []} for t in tools}
    for _ in range(repeats):
        for tool in tools:
            full = timed(command(tool, long_clip, tmp / f"{tool}.mp4"))
            single = timed(command(tool, one_frame, tmp / f"{tool}_1.mp4"))
            res[tool]["with"].append(frames / full)
            res[tool]["without"].append((frames - 1) / max(full - single, 1e-6))
    base = res["deface"]
    for tool in tools:
        for kind in ("with", "without"):
            res[tool][f"ratio_{kind}"] = [a / b for a, b in zip(res[tool][kind], base[kind])]
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement; medians are printed")
    p.add_argument(
        "--methods",
        default="centerface,yolo,unet",
        help="comma-separated fourfold-blur methods (yolo_small: --method yolo --small-faces)",
    )
    p.add_argument("--sizes", default="640x360,1280x720", help="comma-separated WxH clip sizes")
    args = p.parse_args(argv)

    from fourfold.core.environment import configure_environment

    configure_environment()
    try:
        import deface  # noqa: F401
    except ImportError:
        print("deface is not installed: no baseline to compare with (make install)")
        return 1
    methods = [m for m in args.methods.split(",") if m]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    print(
        f"{'clip':>9} {'tool':>17} {'fps':>6} {'x deface':>9} {'fps':>6} {'x deface':>9}   median of "
        f"{args.repeats}, {args.frames} frames, decode+detect+blur+encode"
    )
    print(f"{'':>9} {'':>17} {'-- with start-up --':>16} {'-- without start-up --':>22}")
    with tempfile.TemporaryDirectory(prefix="faceblur-bench-") as tmp:
        tmp = Path(tmp)
        for width, height in sizes:
            clips = (make_clip_file(tmp, width, height, args.frames), make_clip_file(tmp, width, height, 1))
            res = measure(["deface", *methods], clips, args.frames, args.repeats, tmp)
            for tool, r in res.items():
                med = {k: statistics.median(v) for k, v in r.items()}
                print(
                    f"{f'{width}x{height}':>9} {tool:>17} {med['with']:6.1f} {med['ratio_with']:9.2f} "
                    f"{med['without']:6.1f} {med['ratio_without']:9.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
