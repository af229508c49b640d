"""How the tool writes its outputs: atomically, with the user's usual permissions, and never half.

Files are written through ``core.files.atomic_path``: a hidden temporary file next to the target, renamed
onto it only when the block succeeds, with ``0o666 & ~umask`` (what ``open()`` would give), not the 0600
of ``mkstemp``. ``terminate_cleanly()`` turns SIGTERM into an exception, so that every ``finally``
(temporary files, the ffmpeg encoder) runs before the process exits. ``check_writable(folder)`` fails
before any work when an output folder cannot be created or written.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fourfold.core.files import atomic_path


class Terminated(Exception):
    """The process received SIGTERM; raised from the signal handler so that clean-up code runs."""


output_path = atomic_path  # the tool's outputs: atomic, with the user's usual permissions


def check_writable(folder: str | os.PathLike) -> list[Path]:
    """Create ``folder`` if needed and prove a file can be made in it; ``PermissionError`` with a message
    naming the folder otherwise. Returns the folders it created (deepest last), for ``remove_if_empty``."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".fourfold-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PermissionError(f"cannot write to output folder {folder}: {reason.lower()}") from None
    return created


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the given folders, deepest first, where they are empty (a failed run leaves no folder)."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def _raise_terminated(signum, frame):
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """While active, SIGTERM raises ``Terminated`` (the previous handler is restored afterwards). Only the
    main thread may set signal handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
