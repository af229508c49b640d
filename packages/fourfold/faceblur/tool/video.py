"""Video in, video out through ffmpeg (the ``imageio-ffmpeg`` wheel ships the binary; ffmpeg 7 or later),
one frame at a time.

``anonymize_video`` first reads what the container says (``probe``: a video stream, its frame size against
the pixel limit, audio) and every frame's timestamp (``timestamps.frame_times``), then decodes each frame
once (no frame duplicated or dropped), calls a frame function and encodes H.264 (crf 25, deface's setting)
with the input's own timestamps, so a variable-frame-rate video keeps its duration and its audio sync. The
output goes to a hidden temporary file next to the target, renamed only when every frame succeeded: a frame
that cannot be processed fails the run (SIGTERM and Ctrl-C too, see ``outputs.terminate_cleanly``), and
nothing half-written is left behind. Outputs get the user's usual permissions. The audio track is copied
by default. The input is never modified.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourfold.faceblur.tool.limits import check_pixels
from fourfold.faceblur.tool.outputs import output_path, signals_held
from fourfold.faceblur.tool.timestamps import FrameTimes, frame_times, setpts_filter

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv")  # read
OUTPUT_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")  # containers that take H.264 (+ AAC) as written


class VideoError(ValueError):
    """A video that cannot be read or written; the message says what was wrong."""


@dataclass
class VideoInfo:
    fps: float
    size: tuple[int, int]  # width, height
    duration: float | None
    has_audio: bool


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Header:
    """What ffmpeg reads from the container before decoding: the video streams' frame sizes, and audio."""

    video_sizes: tuple[tuple[int, int], ...]  # (width, height) per video stream
    has_audio: bool


def probe(path: str | Path) -> Header:
    """The container's header as ``ffmpeg -i`` reports it (headers and a few packets, never every frame)."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    report = subprocess.run(command, capture_output=True, text=True, errors="replace").stderr
    sizes = []
    for line in report.splitlines():
        if re.match(r"\s*Stream #\d+:\d+.*: Video: ", line):
            parts = re.split(r",\s+", line.split(": Video: ", 1)[1])  # codec, pixel format, WxH [SAR], ...
            found = [m for part in parts if (m := re.match(r"(\d+)x(\d+)\b", part.strip()))]
            sizes.append((int(found[0][1]), int(found[0][2])) if found else (0, 0))
    audio = re.search(r"Stream #\d+:\d+.*: Audio:", report) is not None
    return Header(tuple(sizes), audio)


def has_audio(path: str | Path) -> bool:
    """Whether ffmpeg sees an audio stream in ``path``."""
    return probe(path).has_audio


def check_header(path: Path, max_megapixels: float | None) -> Header:
    """``probe`` plus the checks it allows before decoding: a video stream exists, and its frames are
    within ``max_megapixels`` (None: no limit)."""
    header = probe(path)
    if not header.video_sizes:
        what = "only audio" if header.has_audio else "no streams"
        raise VideoError(f"input video {path} holds {what}: there is no video stream to anonymise")
    width, height = header.video_sizes[0]
    if max_megapixels is not None:
        check_pixels(width * height, f"{width} x {height}", max_megapixels, f"input video {path}: a frame")
    return header


def check_input(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input video {path} does not exist")
    if not path.is_file():
        raise VideoError(f"input {path} is not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"input video {path} is empty (0 bytes)")
    return path


def check_output(src: Path, dst: str | Path) -> Path:
    dst = Path(dst)
    if dst.resolve() == src.resolve():
        raise VideoError(
            f"output {dst} is the input: choose another output path (the input is never overwritten)"
        )
    if dst.suffix.lower() not in OUTPUT_VIDEO_SUFFIXES:
        raise VideoError(
            f"output {dst}: the H.264 encoder writes {', '.join(OUTPUT_VIDEO_SUFFIXES)} files, not "
            f"{dst.suffix or 'files without an extension'}"
        )
    return dst


def pixel_format(width: int, height: int) -> str:
    """yuv420p needs even sizes; odd-sized videos keep their size in yuv444p rather than being padded."""
    return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


def read_video(path: str | Path):
    """(VideoInfo, frame iterator of RGB uint8 (H, W, 3)). Raises ``VideoError`` for unreadable files."""
    import imageio_ffmpeg

    path = check_input(path)
    # passthrough: each decoded frame once (by default ffmpeg resamples to a constant rate, duplicating
    # frames of a variable-frame-rate video)
    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-fps_mode", "passthrough"])
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as err:
        raise VideoError(
            f"cannot read video {path}: {str(err).strip().splitlines()[-1] if str(err) else err}"
        ) from err
    width, height = meta["size"]
    # The reader's own header parse names the audio codec: no second ffmpeg run (has_audio) is needed.
    audio = bool(meta.get("audio_codec"))
    info = VideoInfo(float(meta.get("fps") or 25.0), (int(width), int(height)), meta.get("duration"), audio)

    def frames():
        try:
            for raw in reader:
                yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        except (OSError, RuntimeError) as err:
            raise VideoError(f"decoding {path} failed: {err}") from err
        finally:
            reader.close()

    return info, frames()


# imageio-ffmpeg warns "No frames have been written" when a run stops before its first frame; the run then
# fails with its own one-line message and leaves no file, so the warning would only mislead
logging.getLogger("imageio_ffmpeg").addFilter(lambda r: "No frames have been written" not in r.getMessage())

FILTER_ARGUMENT_MAX = 100_000  # characters; a longer filter goes through a file (Linux caps one argument)


def _timing_params(times: FrameTimes) -> tuple[list[str], Path | None]:
    """Encoder options that stamp each frame with the input's timestamp; the file holding a long filter
    (the caller deletes it), or None."""
    timing = setpts_filter(times)
    # the encoder keeps the filter's time base (by default it would round to 1/frame rate)
    keep = ["-fps_mode", "passthrough", "-enc_time_base:v", "filter"]
    if len(timing) <= FILTER_ARGUMENT_MAX:
        return ["-filter:v", timing, *keep], None
    fd, name = tempfile.mkstemp(prefix="fourfold-blur-timing.", suffix=".txt")
    with os.fdopen(fd, "w") as handle:
        handle.write(timing)
    return ["-/filter:v", name, *keep], Path(name)


def anonymize_video(
    src: str | Path,
    dst: str | Path,
    process: Callable[[np.ndarray], np.ndarray],
    *,
    keep_audio: bool = True,
    progress: bool = True,
    quality: float = 5.0,
    min_decoded_share: float = 0.9,
    max_megapixels: float | None = None,
) -> dict[str, float]:
    """Apply ``process`` (RGB frame -> RGB frame of the same shape) to every frame of ``src``; write ``dst``
    with the same frames at the same timestamps.

    Returns ``frames``, ``fps`` (of the video, as the container states it) and ``audio`` (1 if an audio
    track was copied). Raises ``VideoError`` for a missing or unreadable input, one without a video stream
    or without a decodable frame, a truncated one (fewer decoded frames than ``min_decoded_share`` of what
    the container's duration promises), and ``PixelLimitError`` for frames over ``max_megapixels``
    (None: no limit), both before any frame is decoded for output.
    """
    import imageio_ffmpeg
    from tqdm import tqdm

    src = check_input(src)
    dst = check_output(src, dst)
    header = check_header(src, max_megapixels)
    times = frame_times(src, ffmpeg_exe())
    if not times.pts:
        raise VideoError(
            f"input video {src} has a video stream but no frame that can be decoded "
            "(it holds zero frames, or their data is missing)"
        )
    info, frames = read_video(src)
    width, height = info.size
    expected = int(round(info.duration * info.fps)) if info.duration else None
    copy_audio = keep_audio and header.has_audio
    pix_fmt = pixel_format(width, height)
    n = 0
    timing_file = None
    try:
        with signals_held():  # a signal between mkstemp and the assignment would leave the file
            timing, timing_file = _timing_params(times)
        with output_path(dst) as tmp:
            writer = imageio_ffmpeg.write_frames(
                str(tmp),
                (width, height),
                fps=info.fps,
                quality=quality,
                macro_block_size=1,
                pix_fmt_out=pix_fmt,
                audio_path=str(src) if copy_audio else None,
                audio_codec="aac" if copy_audio else None,
                output_params=timing,
                ffmpeg_log_level="error",
            )
            try:
                with signals_held():  # starts ffmpeg: a signal before ``try`` would orphan it (writing tmp)
                    writer.send(None)
                total = len(times.pts)
                for frame in tqdm(frames, total=total, disable=not progress, unit="frame", desc=src.name):
                    out = process(frame)
                    if out.shape != frame.shape or out.dtype != np.uint8:
                        raise VideoError(f"frame {n}: the frame function returned {out.shape} {out.dtype}")
                    writer.send(np.ascontiguousarray(out))
                    n += 1
            finally:
                writer.close()
            if n == 0:
                raise VideoError(f"input video {src} has no frames")
            if expected and n < min_decoded_share * expected - 1:
                raise VideoError(f"input video {src} looks truncated: decoded {n} of {expected} frames")
    finally:
        if timing_file is not None:
            timing_file.unlink(missing_ok=True)
    return {"frames": float(n), "fps": info.fps, "audio": float(copy_audio)}


def write_video(path: str | Path, frames, fps: float = 25.0, audio: str | Path | None = None) -> Path:
    """Encode RGB frames to ``path`` (H.264), optionally with an audio file muxed in (tests, bench)."""
    import imageio_ffmpeg

    frames = list(frames)
    height, width = frames[0].shape[:2]
    with output_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            quality=8,
            macro_block_size=1,
            ffmpeg_log_level="error",
            pix_fmt_out=pixel_format(width, height),
            audio_path=str(audio) if audio else None,
            audio_codec="aac" if audio else None,
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    return Path(path)


def sine_audio(path: str | Path, seconds: float) -> Path:
    """A 440 Hz test tone (AAC in .m4a) made by ffmpeg: tests and demos need an audio track."""
    cmd = [
        ffmpeg_exe(),
        "-y",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
        "-c:a",
        "aac",
        str(path),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return Path(path)
