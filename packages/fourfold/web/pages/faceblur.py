"""The faceblur page: anonymise the faces of an image or a short video with the ``fourfold-blur`` tool's
own functions (``read_image``, ``make_pipeline`` / ``anonymize_image``, ``anonymize_video``), and draw the
detected boxes on a preview.

Sizes are checked from the file's header before anything is decoded (``fourfold.web.limits``). Detectors
see a copy shrunk to at most ``Limits.detection_pixels`` (``DownscaledDetection``; their boxes are mapped back
and the blur is drawn at full size): CenterFace's memory and time grow with the frame's area (about 0.5 GB
at 1080p, 5 GB at 24 megapixels), YOLO letterboxes to its own size anyway, and the U-Net runs at its own
size."""

from __future__ import annotations

import math
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
from fourfold.faceblur.tool.video import VIDEO_SUFFIXES, VideoError, anonymize_video
from fourfold.web.jobs import Job, checkpoint
from fourfold.web.limits import Limits
from fourfold.web.uploads import UploadError, without_paths

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


def anonymize_still(src: Path, folder: Path, options: Options, pipelines, limits: Limits) -> dict:
    """Anonymise one image (its header already checked); writes ``anonymized.png`` and ``boxes.png``."""
    try:
        image = read_image(src)
    except InputError as err:
        raise UploadError("the image cannot be read: the file is corrupt or not an image") from err
    if image.shape[0] * image.shape[1] > limits.image_pixels:  # the decoder disagreed with the header
        raise UploadError(
            f"the image has {image.shape[1]} x {image.shape[0]} pixels, more than its header said"
        )
    result = anonymize_image(pipelines(options), image)
    outputs = {
        "anonymized.png": write_rgb(folder / "anonymized.png", result.frame),
        "boxes.png": write_rgb(folder / "boxes.png", overlay_boxes(result.frame, result.boxes)),
    }
    faces = None if result.boxes is None else len(result.boxes)
    return {"outputs": outputs, "faces": faces, "size": f"{image.shape[1]} x {image.shape[0]}"}


def anonymize_clip(src: Path, folder: Path, options: Options, pipelines, job: Job) -> dict:
    """Anonymise a video into ``anonymized.mp4`` (audio kept) and write ``boxes.png``: the frame with the
    most detected faces, anonymised, boxes drawn. ``job.done`` counts frames; ``job.total`` is what the
    container promised, and a video that decodes to many more frames than that is stopped (a lying header);
    a cancelled job stops at the next frame."""
    pipeline = pipelines(options)
    pipeline.reset()
    preview = {"faces": -1, "image": None}
    most_frames = int((job.total or 0) * 1.1) + 30

    def process(frame: np.ndarray) -> np.ndarray:
        checkpoint(job)
        if job.done >= most_frames:
            raise UploadError(f"the video holds more frames than its header's {job.total}; re-encode it")
        result = pipeline(frame)
        count = 0 if result.boxes is None else len(result.boxes)
        if count > preview["faces"]:
            preview["faces"], preview["image"] = count, overlay_boxes(result.frame, result.boxes)
        job.done += 1
        return result.frame

    try:
        stats = anonymize_video(src, folder / "anonymized.mp4", process, keep_audio=True, progress=False)
    except VideoError as err:
        message = without_paths(str(err).replace(str(src), "the video"))
        raise UploadError(f"the video cannot be anonymised: {message}") from err
    outputs = {"anonymized.mp4": folder / "anonymized.mp4"}
    if preview["image"] is not None:
        outputs["boxes.png"] = write_rgb(folder / "boxes.png", preview["image"])
    faces = None if options.method == "unet" else max(preview["faces"], 0)
    return {"outputs": outputs, "faces": faces, "frames": int(stats["frames"])}


class DownscaledDetection:
    """A detector run on a copy of the frame shrunk to at most ``max_pixels`` (area interpolation), its
    boxes mapped back to the frame's pixels; frames within the limit go to the detector unchanged."""

    def __init__(self, detector, max_pixels: int):
        self.detector, self.max_pixels = detector, int(max_pixels)
        self.name = getattr(detector, "name", "detector")

    def reset(self) -> None:
        if hasattr(self.detector, "reset"):
            self.detector.reset()

    def detect(self, frame: np.ndarray):
        import cv2

        height, width = frame.shape[:2]
        if height * width <= self.max_pixels:
            return self.detector.detect(frame)
        scale = math.sqrt(self.max_pixels / (height * width))
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        boxes, scores = self.detector.detect(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        factors = np.array([width / size[0], height / size[1]] * 2)
        return np.asarray(boxes, float).reshape(-1, 4) * factors, scores


class PipelineCache:
    """Pipelines built once per options (loading a detector takes seconds); used by one worker at a time.
    Detector pipelines detect on at most ``detection_pixels`` (``DownscaledDetection``)."""

    def __init__(self, detection_pixels: int):
        self.detection_pixels = detection_pixels
        self._built: dict[Options, object] = {}

    def __call__(self, options: Options):
        if options not in self._built:
            pipeline = make_pipeline(options.method, **options.pipeline_kwargs())
            if hasattr(pipeline, "detector"):
                pipeline.detector = DownscaledDetection(pipeline.detector, self.detection_pixels)
            self._built[options] = pipeline
        return self._built[options]


ACCEPTED_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
__all__ = ["ACCEPTED_SUFFIXES", "METHODS", "MODES", "Options", "PipelineCache", "parse_options"]
