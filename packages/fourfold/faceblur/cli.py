"""``fourfold-blur``: anonymise faces in an image, a folder of images/videos, or a video.

    fourfold-blur INPUT [-o OUTPUT] [--method yolo|unet|centerface] [--mode blur|mosaic|solid|code]
                  [--threshold T] [--mask-scale S] [--hold N] [--weights FILE] [--no-audio]

Outputs are written to a temporary file and renamed when complete; the input is never modified, and an
output path equal to the input is refused. Exit status 2 for bad input, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fourfold.faceblur.blur import MODES
from fourfold.faceblur.pipeline import METHODS, make_pipeline
from fourfold.faceblur.video import VIDEO_SUFFIXES, VideoError, anonymize_video

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class InputError(ValueError):
    """Bad input for the tool: the message says what to change."""


def default_output(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "_anonymized")
    suffix = ".mp4" if path.suffix.lower() in VIDEO_SUFFIXES else path.suffix
    return path.with_name(f"{path.stem}_anonymized{suffix}")


def anonymize_image(src: Path, dst: Path, pipeline) -> int:
    """Anonymise one image file; returns the number of boxes anonymised (-1 for the U-Net)."""
    import cv2

    from fourfold.core.files import atomic_path

    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {src}: the file is corrupt or not an image")
    result = pipeline(image[..., ::-1].copy())
    with atomic_path(dst) as tmp:
        if not cv2.imwrite(str(tmp), result.frame[..., ::-1]):
            raise InputError(f"cannot write image {dst}: unsupported extension {dst.suffix!r}")
    return -1 if result.boxes is None else len(result.boxes)


def anonymize_one(src: Path, dst: Path, pipeline, *, keep_audio: bool, progress: bool) -> dict[str, float]:
    suffix = src.suffix.lower()
    if dst.resolve() == src.resolve():
        raise InputError(
            f"output {dst} is the input; choose another output path (the input is never overwritten)"
        )
    if suffix in IMAGE_SUFFIXES:
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(
                f"output {dst} must be an image ({', '.join(IMAGE_SUFFIXES)}) for an image input"
            )
        faces = anonymize_image(src, dst, pipeline)
        return {"frames": 1.0, "faces": float(faces)}
    if suffix in VIDEO_SUFFIXES:
        pipeline.reset()
        return anonymize_video(
            src, dst, lambda f: pipeline(f).frame, keep_audio=keep_audio, progress=progress
        )
    raise InputError(
        f"unsupported file type {src.suffix!r} for {src}; images: {', '.join(IMAGE_SUFFIXES)}; "
        f"videos: {', '.join(VIDEO_SUFFIXES)}"
    )


def anonymize_path(
    input: str | Path,
    output: str | Path | None = None,
    *,
    method: str = "yolo",
    keep_audio: bool = True,
    progress: bool = True,
    **pipeline_kwargs,
) -> dict[str, float]:
    """Anonymise an image, a video or every image/video of a folder (not recursive).

    ``pipeline_kwargs`` go to ``make_pipeline`` (mode, threshold, hold, weights, mask_scale, ...).
    Returns totals: ``files``, ``frames``, ``seconds``.
    """
    src = Path(input)
    if not src.exists():
        raise InputError(f"input {src} does not exist")
    dst = Path(output) if output else default_output(src)
    if dst.resolve() == src.resolve():
        raise InputError(
            f"output {dst} is the input; choose another output path (the input is never overwritten)"
        )
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if not files:
            raise InputError(
                f"folder {src} holds no image or video ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
            )
        if dst.exists() and not dst.is_dir():
            raise InputError(f"output {dst} exists and is not a folder")
        pairs = [
            (f, dst / (f.name if f.suffix.lower() in IMAGE_SUFFIXES else f.stem + ".mp4")) for f in files
        ]
    else:
        pairs = [(src, dst)]
    pipeline = make_pipeline(method, **pipeline_kwargs)
    t0 = time.perf_counter()
    frames = 0.0
    for f, out in pairs:
        out.parent.mkdir(parents=True, exist_ok=True)
        frames += anonymize_one(f, out, pipeline, keep_audio=keep_audio, progress=progress)["frames"]
    return {"files": float(len(pairs)), "frames": frames, "seconds": time.perf_counter() - t0}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fourfold-blur",
        description="Anonymise faces in an image, a folder or a video (Plaud & Lisani 2024, reproduced).",
        epilog="A Gaussian blur can leave a face recognisable; --mode mosaic or solid is safer.",
    )
    p.add_argument("input", help="image, video, or folder of them")
    p.add_argument("-o", "--output", help="output file or folder (default: <input>_anonymized)")
    # CenterFace (trained on real faces) is the default: our YOLO has seen synthetic composites of about 100
    # people, and two real photos are too little evidence to trust it on real footage by default.
    p.add_argument(
        "--method",
        choices=METHODS,
        default="centerface",
        help="face finder: centerface (default, reference detector), yolo (approach 1, packaged weights), "
        "unet (approach 2)",
    )
    p.add_argument("--mode", choices=MODES, default="blur", help="what fills a face (default blur)")
    p.add_argument("--threshold", type=float, help="detection score threshold (yolo 0.3, centerface 0.2)")
    p.add_argument("--mask-scale", type=float, default=1.0, help="ellipse size relative to the box (1.0)")
    p.add_argument("--feather", type=float, default=0.0, help="soft mask edge, share of the radius (0)")
    p.add_argument(
        "--hold", type=int, default=0, help="keep boxes for N more frames (video, default 0 = off)"
    )
    p.add_argument("--weights", help="weights file for yolo or unet (default: the packaged ones)")
    p.add_argument("--unet-size", type=int, default=256, help="U-Net working resolution, longer side (256)")
    p.add_argument("--no-audio", action="store_true", help="drop the audio track (kept by default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    from fourfold.core.environment import configure_environment

    configure_environment()
    args = parser().parse_args(argv)
    if args.mask_scale <= 0:
        parser().error("--mask-scale must be positive")
    if args.hold < 0:
        parser().error("--hold must be >= 0")
    try:
        stats = anonymize_path(
            args.input,
            args.output,
            method=args.method,
            mode=args.mode,
            threshold=args.threshold,
            mask_scale=args.mask_scale,
            feather=args.feather,
            hold=args.hold,
            weights=args.weights,
            unet_size=args.unet_size,
            keep_audio=not args.no_audio,
            progress=not args.quiet,
        )
    except (InputError, VideoError, FileNotFoundError, ImportError, ValueError) as err:
        print(f"fourfold-blur: error: {err}", file=sys.stderr)
        return 2
    print(
        f"anonymised {int(stats['files'])} file(s), {int(stats['frames'])} frame(s) "
        f"in {stats['seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
