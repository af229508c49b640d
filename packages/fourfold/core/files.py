"""Atomic file writes: a reader never sees half a file, and a crash never leaves one behind. Written files
get the permissions a plain ``open()`` would give them (0o666 minus the umask), not mkstemp's 0600."""

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def user_file_mode() -> int:
    """The permission bits a plain ``open(path, "w")`` gives a new file: 0o666 minus the umask."""
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it and set it back
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary file keeps the target's suffix (or ``suffix``) so libraries that pick a format from
    the extension (matplotlib, ffmpeg, numpy) still do the right thing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = None
    try:
        while True:  # mkstemp, but the name is known before the file exists: an interrupt anywhere in
            # here (Ctrl-C between mkstemp's return and the assignment) cannot leave the file behind
            tmp_path = target.parent / f".{target.stem}.{secrets.token_hex(6)}{suffix or target.suffix}"
            try:
                os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:
                tmp_path = None  # someone else's file: never ours to delete
        yield tmp_path
        os.chmod(tmp_path, user_file_mode())
        os.replace(tmp_path, target)
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_json(target: str | os.PathLike, obj: object) -> Path:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    return atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")
