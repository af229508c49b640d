"""Uploaded files at the boundary: type, size and shape checks with messages a user can act on.

Uploads are written to a folder of the app's workspace that the caller deletes after the response
(``Workspace.scratch``), copied in chunks (never held whole in memory); nothing is unpickled: ``.npy``
files load with ``allow_pickle=False``. Messages never carry a server path (``without_paths``).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

MEGABYTE = 1024 * 1024
CHUNK = MEGABYTE
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)*[^\s/'\",;:)]+")


class UploadError(ValueError):
    """A bad upload or form value; the message is shown on the page as is."""


def without_paths(text: str) -> str:
    """``text`` on one line with every absolute file path replaced by "a server file"."""
    return _ABSOLUTE_PATH.sub("a server file", " ".join(str(text).split()))


async def save_upload(upload, folder: Path, *, what: str, suffixes: tuple[str, ...], max_mb: float) -> Path:
    """Write one uploaded file into ``folder`` after checking its extension and size; returns its path.

    ``upload`` is a Starlette ``UploadFile`` (anything else, a missing field included, is "choose a file").
    Raises ``UploadError`` naming ``what`` was wrong.
    """
    if not has_file(upload):
        raise UploadError(f"choose a file for the {what}")
    name = Path(upload.filename).name
    suffix = Path(name).suffix.lower()
    if suffix not in suffixes:
        raise UploadError(
            f"{what}: {name!r} is a {suffix or 'file without extension'}; upload one of {', '.join(suffixes)}"
        )
    limit = int(max_mb * MEGABYTE)
    path = folder / f"{what.replace(' ', '_')}{suffix}"
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadError(
                    f"{what}: {name!r} is larger than the page's {max_mb:g} MB limit; upload a smaller file"
                )
            out.write(chunk)
    if size == 0:
        raise UploadError(f"{what}: {name!r} is empty")
    return path


def has_file(upload) -> bool:
    """Whether a form field carries a chosen file (browsers send an empty part when none was chosen; a
    text field of the same name is not a file)."""
    return isinstance(getattr(upload, "filename", None), str) and bool(Path(upload.filename).name)


def read_matrix(path: Path, *, what: str, dtype=np.float64) -> np.ndarray:
    """A numeric array from ``.npy`` (never unpickled) or ``.csv`` (comma separated, no header)."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with warnings.catch_warnings():  # "input contained no data": said below, in the page's words
                warnings.simplefilter("ignore", UserWarning)
                array = np.loadtxt(io.StringIO(path.read_text(encoding="utf-8")), delimiter=",", ndmin=2)
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as err:
        if path.suffix.lower() == ".npy":  # numpy's own message suggests unpickling, which is never done
            raise UploadError(
                f"{what}: the file is not a NumPy .npy array of numbers (np.save of a numeric "
                "array); object arrays are refused"
            ) from err
        raise UploadError(
            f"{what}: the file is not comma-separated numbers without a header ({without_paths(err)})"
        ) from err
    if array.dtype.kind not in "biuf":
        raise UploadError(f"{what}: expected numbers, got an array of {array.dtype}")
    if array.size == 0:
        raise UploadError(f"{what}: the file holds no numbers")
    return np.asarray(array, dtype=dtype)


def text_field(form, name: str, default: str = "") -> str:
    """A text field of a submitted form, stripped; ``default`` when missing, empty or a file part."""
    value = form.get(name)
    return value.strip() or default if isinstance(value, str) else default
