"""The faceblur page: anonymise the faces of an image or a short video with the ``fourfold-blur`` tool's
own functions (``faceblur.cli.read_image``, ``faceblur.pipeline.make_pipeline`` / ``anonymize_image``,
``faceblur.video.anonymize_video``), and draw the detected boxes on a preview."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourfold.faceblur.tool.blur import MODES
from fourfold.faceblur.tool.cli import IMAGE_SUFFIXES, InputError, read_image
from fourfold.faceblur.tool.pipeline import (
    METHODS,
    SettingError,
    anonymize_image,
    check_settings,
    make_pipeline,
)
from fourfold.faceblur.tool.video import VIDEO_SUFFIXES, VideoError, anonymize_video, read_video
from fourfold.web.uploads import UploadError

MAX_PIXELS = 40_000_000  # a larger still is refused before any work (decompression bombs)
BOX_COLOUR = (0, 200, 0)  # RGB


@dataclass(frozen=True)
class Options:
    method: str
    mode: str
    threshold: float | None

    def pipeline_kwargs(self) -> dict:
        return {"mode": self.mode, "threshold": self.threshold}


def parse_options(method: str, mode: str, threshold: str) -> Options:
    """Form values -> checked options; ``UploadError`` with the tool's own reason otherwise."""
    value = None
    if threshold.strip():
        try:
            value = float(threshold)
        except ValueError as err:
            raise UploadError(f"threshold must be a number in [0, 1) or empty, got {threshold!r}") from err
    if method == "unet" and value is not None:
        raise UploadError(
            "the threshold applies to the detectors (centerface, yolo): leave it empty for unet"
        )
    try:
        check_settings(method, mode=mode, threshold=value)
    except SettingError as err:
        raise UploadError(str(err).replace("--", "")) from err
    return Options(method, mode, value)


def overlay_boxes(image: np.ndarray, boxes) -> np.ndarray:
    """An 8-bit RGB copy of ``image`` with ``boxes`` (x1, y1, x2, y2 in pixels) drawn on it."""
    import cv2

    rgb = image
    if rgb.dtype != np.uint8:
        rgb = (rgb / 257).astype(np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    rgb = np.array(rgb[..., :3], order="C", copy=True)  # never draw on the caller's (output) frame
    width = max(2, round(max(rgb.shape[:2]) / 300))
    for x1, y1, x2, y2 in np.asarray(boxes if boxes is not None else [], dtype=float).reshape(-1, 4):
        cv2.rectangle(rgb, (int(x1), int(y1)), (int(x2), int(y2)), BOX_COLOUR, width)
    return rgb


def write_rgb(path: Path, image: np.ndarray) -> Path:
    """Write an image in the tool's RGB(A) layout (grey, RGB, RGBA; 8 or 16 bit) as the file's format."""
    import cv2

    from fourfold.core.files import atomic_path

    out = image
    if out.ndim == 3:
        out = out[..., [2, 1, 0, 3]] if out.shape[2] == 4 else out[..., ::-1]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(out)):
            raise UploadError(f"could not write {path.name}")
    return path


def is_video(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


def anonymize_still(src: Path, folder: Path, options: Options, pipelines) -> dict:
    """Anonymise one image; writes ``<stem>_anonymized.png`` and ``boxes.png`` into ``folder``."""
    try:
        image = read_image(src)
    except InputError as err:
        raise UploadError("the image cannot be read: the file is corrupt or not an image") from err
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise UploadError(f"the image has {image.shape[1]} x {image.shape[0]} pixels, over {MAX_PIXELS:,}")
    result = anonymize_image(pipelines(options), image)
    outputs = {
        "anonymized.png": write_rgb(folder / "anonymized.png", result.frame),
        "boxes.png": write_rgb(folder / "boxes.png", overlay_boxes(result.frame, result.boxes)),
    }
    faces = None if result.boxes is None else len(result.boxes)
    return {"outputs": outputs, "faces": faces, "size": f"{image.shape[1]} x {image.shape[0]}"}


def check_clip(src: Path, max_seconds: float) -> tuple[int, float]:
    """(expected frames, duration in s) of a video short enough for the page; ``UploadError`` otherwise."""
    try:
        info, frames = read_video(src)
    except (VideoError, FileNotFoundError) as err:
        raise UploadError(f"the video cannot be read: {err}") from err
    frames.close()
    if not info.duration:
        raise UploadError("the video's duration is unknown; convert it to .mp4 and upload it again")
    if info.duration > max_seconds:
        raise UploadError(
            f"the video lasts {info.duration:.1f} s, over the page's {max_seconds:g} s limit; "
            "cut it shorter or use fourfold-blur on the command line"
        )
    return int(round(info.duration * info.fps)), float(info.duration)


def anonymize_clip(src: Path, folder: Path, options: Options, pipelines, on_frame) -> dict:
    """Anonymise a video into ``anonymized.mp4`` (audio kept) and write ``boxes.png``: the frame with the
    most detected faces, anonymised, boxes drawn. ``on_frame()`` is called after every frame."""
    pipeline = pipelines(options)
    pipeline.reset()
    preview = {"faces": -1, "image": None}

    def process(frame: np.ndarray) -> np.ndarray:
        result = pipeline(frame)
        count = 0 if result.boxes is None else len(result.boxes)
        if count > preview["faces"]:
            preview["faces"], preview["image"] = count, overlay_boxes(result.frame, result.boxes)
        on_frame()
        return result.frame

    try:
        stats = anonymize_video(src, folder / "anonymized.mp4", process, keep_audio=True, progress=False)
    except VideoError as err:
        raise UploadError(f"the video cannot be anonymised: {err}") from err
    outputs = {"anonymized.mp4": folder / "anonymized.mp4"}
    if preview["image"] is not None:
        outputs["boxes.png"] = write_rgb(folder / "boxes.png", preview["image"])
    faces = None if options.method == "unet" else max(preview["faces"], 0)
    return {"outputs": outputs, "faces": faces, "frames": int(stats["frames"])}


class PipelineCache:
    """Pipelines built once per options (loading a detector takes seconds); used by one worker at a time."""

    def __init__(self):
        self._built: dict[Options, object] = {}

    def __call__(self, options: Options):
        if options not in self._built:
            self._built[options] = make_pipeline(options.method, **options.pipeline_kwargs())
        return self._built[options]


ACCEPTED_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
__all__ = ["ACCEPTED_SUFFIXES", "METHODS", "MODES", "Options", "PipelineCache", "parse_options"]
