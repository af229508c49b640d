"""What the app accepts, checked before any decoding: upload sizes, the pixels of a still (from its header),
the pixels per frame, duration and frames x pixels of a video (from its container, by ``ffmpeg -i``).

A 0.3 MB PNG can declare 100 megapixels and a 0.8 MB video 8K frames: the header is read, the limits
compared, and only then is anything decoded. Every refusal is an ``UploadError`` whose one sentence says
what the limit is and what to do.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from fourfold.web.uploads import MEGABYTE, UploadError

FULL_HD = 1920 * 1080
PROBE_SECONDS = 20  # ffmpeg reading a header; a file that takes longer is refused
# Demuxers ffmpeg may pick for an upload: real containers only. A playlist (HLS, concat) renamed .mp4 could
# make ffmpeg open other files or URLs; the probe names the demuxer and anything else is refused.
VIDEO_FORMATS = frozenset(
    {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpeg", "mpegts", "asf"}
)


@dataclass(frozen=True)
class Limits:
    """The app's limits; the defaults are stated on the faceblur page and in the README."""

    table_mb: float = 20.0  # one CSV, NPY or JSON file
    image_mb: float = 20.0
    video_mb: float = 100.0
    image_pixels: int = 24_000_000  # a 6000 x 4000 photo
    frame_pixels: int = FULL_HD  # per video frame: 1080p
    video_seconds: float = 180.0
    video_pixels: int = 1800 * FULL_HD  # frames x pixels: 1 minute of 1080p, 2 of 720p, at 30 frames/s
    detection_pixels: int = (
        FULL_HD  # detectors see at most this many pixels (a shrunk copy); blur is full size
    )
    form_kb: float = 64.0  # a form without files (the critical page, a cancel button)


def _megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def still_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image's header (``Image.open`` is lazy: nothing is decoded); None when the
    header declares more than PIL's own ceiling (about 179 megapixels), far over any page limit."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except Image.DecompressionBombError:
        return None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UploadError("the image cannot be read: the file is corrupt or not an image") from err


def check_still(path: Path, limits: Limits) -> tuple[int, int]:
    """The still's (width, height) when within ``limits.image_pixels``; ``UploadError`` otherwise."""
    size = still_size(path)
    advice = "scale it down or use fourfold-blur on the command line"
    if size is None:
        raise UploadError(
            f"the image is far over the page's {_megapixels(limits.image_pixels)} limit; {advice}"
        )
    width, height = size
    if width * height > limits.image_pixels:
        raise UploadError(
            f"the image is {width} x {height} pixels ({_megapixels(width * height)}), over the page's "
            f"{_megapixels(limits.image_pixels)} limit; {advice}"
        )
    return width, height


@dataclass(frozen=True)
class VideoHeader:
    demuxer: str
    duration: float | None  # seconds
    streams: tuple[tuple[int, int, float | None], ...]  # (width, height, frames per second) per video stream


def _duration(text: str) -> float | None:
    found = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    if not found:
        return None
    hours, minutes, seconds = found.groups()
    return 3600 * int(hours) + 60 * int(minutes) + float(seconds)


def _video_stream(line: str) -> tuple[int, int, float | None] | None:
    """(width, height, fps) of one ``Stream #0:0...: Video: ...`` line of ffmpeg's report; None for a
    cover picture (``attached pic``: one still, not the video)."""
    if "(attached pic)" in line:
        return None
    size = fps = None
    for part in re.split(r",\s+", line.split(": Video: ", 1)[1]):
        if size is None and (found := re.match(r"(\d+)x(\d+)\b", part.strip())):
            size = int(found[1]), int(found[2])
        elif fps is None and (found := re.match(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)\b", part.strip())):
            fps = float(found[1]) * (1000 if found[2] else 1)
    return None if size is None else (*size, fps)


def probe_video(path: Path) -> VideoHeader:
    """What the container says (``ffmpeg -i``: headers and a few packets, never the whole video, in a
    subprocess); ``UploadError`` when ffmpeg cannot open it or names a demuxer that is not a video file."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin"]
    command += ["-protocol_whitelist", "file", "-i", str(path)]
    try:
        report = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_SECONDS, errors="replace"
        )
    except subprocess.TimeoutExpired as err:
        raise UploadError(
            "the video's header takes too long to read; the file is corrupt or not a video"
        ) from err
    found = re.search(r"^Input #0, ([\w,]+), from ", report.stderr, flags=re.MULTILINE)
    if not found:
        raise UploadError("the video cannot be read: the file is corrupt or not a video")
    demuxer = found[1]
    if not set(demuxer.split(",")) & VIDEO_FORMATS:
        raise UploadError(
            f"the file is a {demuxer.split(',')[0]} file, not a video container (MP4, MKV, ...)"
        )
    streams = tuple(
        s
        for line in report.stderr.splitlines()
        if re.match(r"\s*Stream #\d+:\d+.*: Video: ", line)
        if (s := _video_stream(line)) is not None
    )
    if not streams:
        raise UploadError("the file holds no video stream")
    return VideoHeader(demuxer, _duration(report.stderr), streams)


def check_video(header: VideoHeader, limits: Limits) -> int:
    """The number of frames the container promises, when the video is within ``limits``."""
    width, height = max((s[:2] for s in header.streams), key=lambda s: s[0] * s[1])
    pixels = width * height
    if pixels > limits.frame_pixels:
        raise UploadError(
            f"the video's frames are {width} x {height} pixels, over the page's "
            f"{_megapixels(limits.frame_pixels)} a frame (1080p); scale it down or use fourfold-blur on the "
            "command line"
        )
    if not header.duration:
        raise UploadError(
            "the video's header gives no duration; re-encode it (for example with ffmpeg -i in out.mp4)"
        )
    if header.duration > limits.video_seconds:
        raise UploadError(
            f"the video lasts {header.duration:.1f} s, over the page's {limits.video_seconds:g} s limit; "
            "cut it shorter or use fourfold-blur on the command line"
        )
    fps = max((s[2] for s in header.streams if s[2]), default=None)
    if fps is None:
        raise UploadError("the video's header gives no frame rate; re-encode it (for example with ffmpeg)")
    frames = max(1, round(header.duration * fps))
    if frames * pixels > limits.video_pixels:
        raise UploadError(
            f"the video has about {frames} frames of {width} x {height}, over the page's budget of "
            f"{limits.video_pixels / 1e9:.1f} billion pixels in all; cut it shorter, lower its frame rate "
            "or size, or use fourfold-blur on the command line"
        )
    return frames


def body_cap(path: str, limits: Limits) -> tuple[int, str]:
    """(bytes, sentence) for a request body to ``path``: the largest form the page takes, and what to say
    when a body is larger. Each cap is the page's file limits plus 1 MB for the form's other fields, so the
    sentence can state the per-file limit the page shows."""
    slack = MEGABYTE
    if path == "/faceblur":
        cap = int(limits.video_mb * MEGABYTE) + slack
        return cap, (
            f"the file is larger than this page takes ({limits.image_mb:g} MB for an image, "
            f"{limits.video_mb:g} MB for a video); upload a smaller file"
        )
    if path == "/scoring":
        return int(limits.table_mb * MEGABYTE) + slack, (
            f"the CSV is larger than the page's {limits.table_mb:g} MB limit; upload a smaller file"
        )
    if path == "/hierarchical":
        return 3 * int(limits.table_mb * MEGABYTE) + slack, (
            f"a file is larger than the page's {limits.table_mb:g} MB limit; upload smaller files"
        )
    return int(limits.form_kb * 1024), "the form is larger than this page takes; send it from the page"
