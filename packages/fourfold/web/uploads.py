"""Uploaded files at the boundary: type, size and shape checks with messages a user can act on.

Uploads are written to a temporary folder that the caller deletes after the response (``scratch_folder``);
nothing is unpickled: ``.npy`` files load with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MEGABYTE = 1024 * 1024


class UploadError(ValueError):
    """A bad upload or form value; the message is shown on the page as is."""


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A private temporary folder for one request's uploads, removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="fourfold-web-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def save_upload(upload, folder: Path, *, what: str, suffixes: tuple[str, ...], max_mb: float) -> Path:
    """Write one uploaded file into ``folder`` after checking its extension and size; returns its path.

    ``upload`` is a Starlette ``UploadFile``. Raises ``UploadError`` naming ``what`` was wrong.
    """
    name = Path(upload.filename or "").name
    if not name:
        raise UploadError(f"choose a file for {what}")
    suffix = Path(name).suffix.lower()
    if suffix not in suffixes:
        raise UploadError(
            f"{what}: {name!r} is a {suffix or 'file without extension'}; upload one of {', '.join(suffixes)}"
        )
    limit = int(max_mb * MEGABYTE)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise UploadError(f"{what}: {name!r} is larger than the {max_mb:g} MB limit; upload a smaller file")
    if not data:
        raise UploadError(f"{what}: {name!r} is empty")
    path = folder / f"{what.replace(' ', '_')}{suffix}"
    path.write_bytes(data)
    return path


def has_file(upload) -> bool:
    """Whether a form field carries a chosen file (browsers send an empty part when none was chosen)."""
    return upload is not None and hasattr(upload, "filename") and bool(upload.filename)


def read_matrix(path: Path, *, what: str, dtype=np.float64) -> np.ndarray:
    """A numeric array from ``.npy`` (never unpickled) or ``.csv`` (comma separated, no header)."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            array = np.loadtxt(io.StringIO(path.read_text(encoding="utf-8")), delimiter=",", ndmin=2)
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as err:
        if path.suffix.lower() == ".npy":  # numpy's own message suggests unpickling, which is never done
            raise UploadError(
                f"{what}: the file is not a NumPy .npy array of numbers (np.save of a numeric "
                "array); object arrays are refused"
            ) from err
        raise UploadError(
            f"{what}: the file is not comma-separated numbers without a header ({' '.join(str(err).split())})"
        ) from err
    if array.dtype.kind not in "biuf":
        raise UploadError(f"{what}: expected numbers, got an array of {array.dtype}")
    return np.asarray(array, dtype=dtype)
