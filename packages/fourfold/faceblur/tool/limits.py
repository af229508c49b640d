"""The pixel limit, checked from the header before anything is decoded.

A 1.2 MB PNG can declare 20000 x 20000 pixels: decoding it takes 1.2 GB and the tool's working copies
several more. The size is read from the image's header (``PIL.Image.open`` is lazy) or the video's
container (``video.probe``), compared with the limit, and only then is anything decoded.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

DEFAULT_MAX_MEGAPIXELS = 100.0  # an image or one video frame; a 100 MP camera still passes, 8K video is 33 MP


class PixelLimitError(ValueError):
    """An image or video frame larger than the limit; the message states the size, the limit and the flag."""


def image_pixels(path: str | Path) -> tuple[int, str] | None:
    """(pixel count, "W x H" or "over N") from the image's header, without decoding; None when the header
    cannot be read (the decoder then says what is wrong with the file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                return width * height, f"{width} x {height}"
    except Image.DecompressionBombError as err:
        # PIL refuses to open far larger headers (about 179 MP) and names the count in its message; the
        # ceiling itself is the fallback lower bound.
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = int(found[1]) if found else 2 * int(Image.MAX_IMAGE_PIXELS or 0) + 1
        return pixels, f"{pixels / 1e6:.1f} megapixels" if found else "over 179 megapixels"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    except ImportError:
        # ultralytics (loaded by --method yolo) patches Image.open to fetch a HEIF plugin when PIL cannot
        # identify a file; offline and without that plugin, an unreadable header ends up here
        return None


def check_pixels(pixels: int, size: str, max_megapixels: float, what: str) -> None:
    """``PixelLimitError`` when ``pixels`` exceeds ``max_megapixels`` million; ``what`` names the input."""
    if pixels > max_megapixels * 1e6:
        shown = size if "megapixels" in size else f"{size} ({pixels / 1e6:.1f} megapixels)"
        raise PixelLimitError(
            f"{what} is {shown}, over the limit of {max_megapixels:g} megapixels; scale it down, or raise "
            "the limit with --max-megapixels if this machine has the memory"
        )
