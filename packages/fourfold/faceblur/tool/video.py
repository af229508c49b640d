"""Video in, video out through ffmpeg (the ``imageio-ffmpeg`` wheel ships the binary), one frame at a time.

``anonymize_video`` decodes, calls a frame function, encodes H.264 (crf 25, deface's setting) to a hidden
temporary file next to the output and renames it only when every frame succeeded: a frame that cannot be
processed fails the run (SIGTERM too, see ``outputs.terminate_cleanly``), and nothing half-written is left
behind. Outputs get the user's usual permissions. The audio track is copied by default. The input is never
modified.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourfold.faceblur.tool.outputs import output_path

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


def has_audio(path: str | Path) -> bool:
    """Whether ffmpeg sees an audio stream in ``path``."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    return re.search(r"Stream #\d+:\d+.*: Audio:", proc.stderr) is not None


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
    reader = imageio_ffmpeg.read_frames(str(path))
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


def anonymize_video(
    src: str | Path,
    dst: str | Path,
    process: Callable[[np.ndarray], np.ndarray],
    *,
    keep_audio: bool = True,
    progress: bool = True,
    quality: float = 5.0,
    min_decoded_share: float = 0.9,
) -> dict[str, float]:
    """Apply ``process`` (RGB frame -> RGB frame of the same shape) to every frame of ``src``; write ``dst``.

    Returns ``frames``, ``fps`` (of the video) and ``audio`` (1 if an audio track was copied). Raises
    ``VideoError`` for a missing, unreadable, zero-frame or truncated input (fewer decoded frames than
    ``min_decoded_share`` of what the container's duration promises).
    """
    import imageio_ffmpeg
    from tqdm import tqdm

    src = check_input(src)
    dst = check_output(src, dst)
    info, frames = read_video(src)
    width, height = info.size
    expected = int(round(info.duration * info.fps)) if info.duration else None
    copy_audio = keep_audio and info.has_audio
    pix_fmt = pixel_format(width, height)
    n = 0
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
            ffmpeg_log_level="error",
        )
        writer.send(None)
        try:
            for frame in tqdm(frames, total=expected, disable=not progress, unit="frame", desc=src.name):
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
