"""The one folder the app writes to: uploads while a request runs, job inputs and results.

``Workspace`` creates ``fourfold-web-XXXXXXXX`` in the system's temporary folder (or ``parent``) and holds an
exclusive ``flock`` on its ``.lock`` file for as long as the process lives. The kernel drops that lock when
the process ends however it ends (SIGKILL and power loss included), so at start-up any such folder whose lock
can be taken belongs to an earlier run that did not clean up, and is removed. ``close()`` removes the
workspace itself (the app calls it at shutdown, on SIGTERM and SIGINT, and at interpreter exit).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "fourfold-web-"
LOCK_NAME = ".lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None when another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_stale(parent: Path) -> list[Path]:
    """Remove the workspaces under ``parent`` left by app processes that have ended; returns them.

    Only folders named ``fourfold-web-*``, owned by this user and holding a ``.lock`` nobody holds are
    touched; a folder being created (no lock file yet) or one of a running app (locked) is kept."""
    removed = []
    for folder in sorted(parent.glob(f"{PREFIX}*")):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        fd = _try_lock(folder / LOCK_NAME)
        if fd is None:
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


class Workspace:
    """A private folder for everything one app writes, removed by ``close()`` (idempotent)."""

    def __init__(self, parent: Path | None = None):
        parent = Path(parent or tempfile.gettempdir())
        self.stale_removed = remove_stale(parent)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        lock = self.root / LOCK_NAME
        lock.touch()
        self._lock_fd = _try_lock(lock)
        atexit.register(self.close)

    def folder(self, name: str) -> Path:
        """A sub-folder of the workspace (created if needed)."""
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private folder for one request's uploads, removed when the block ends."""
        folder = Path(tempfile.mkdtemp(prefix="request-", dir=self.folder("requests")))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
