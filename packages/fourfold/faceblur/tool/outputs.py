"""How the tool writes its outputs: atomically, with the user's usual permissions, and never half.

Files are written through ``core.files.atomic_path``: a hidden temporary file next to the target, renamed
onto it only when the block succeeds, with ``0o666 & ~umask`` (what ``open()`` would give), not the 0600
of ``mkstemp``. ``terminate_cleanly()`` turns SIGTERM and SIGINT (Ctrl-C) into an exception, so that every
``finally`` (temporary files, the ffmpeg encoder) runs before the process exits, and a second signal cannot
cut that clean-up short; ``signals_held()`` delays it over the few lines between starting something (an
encoder process) and the ``try`` that cleans it up. ``check_writable(folder)`` fails before any work when
an output folder cannot be created or written.
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


class Terminated(BaseException):
    """The process received SIGTERM or SIGINT; raised from the signal handler so that clean-up code runs.

    A ``BaseException``, as ``KeyboardInterrupt`` is: a library's ``except Exception`` (imageio-ffmpeg turns
    an error while it writes a frame into an ``OSError``) must not swallow or rename it."""

    def __init__(self, signum: int):
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}{' (Ctrl-C)' if signum == signal.SIGINT else ''}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (SIGINT 130, SIGTERM
        143)."""
        return 128 + self.signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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


_held = {"depth": 0, "pending": None}  # signals_held() nesting, and the signal that arrived inside it


def _raise_terminated(signum, frame):
    if _held["depth"]:
        _held["pending"] = _held["pending"] or signum
        return
    for stop in STOP_SIGNALS:  # the clean-up that follows runs to its end: later signals are ignored
        signal.signal(stop, signal.SIG_IGN)
    raise Terminated(signum)


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """While active, SIGTERM and SIGINT raise ``Terminated`` (the previous handlers are restored
    afterwards). Only the main thread may set signal handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {stop: signal.signal(stop, _raise_terminated) for stop in STOP_SIGNALS}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def signals_held() -> Iterator[None]:
    """Under ``terminate_cleanly``, a SIGTERM or SIGINT that arrives inside the block raises ``Terminated``
    when the block ends, not in its middle: for starting a process or creating a file and entering the
    ``try`` that will clean it up, with nothing in between where a signal would orphan it."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if not _held["depth"] and _held["pending"] is not None:
            signum, _held["pending"] = _held["pending"], None
            _raise_terminated(signum, None)
