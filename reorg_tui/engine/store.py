"""Small durable files: written whole or not at all, and read back as input."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

_LEFTOVER = re.compile(r"\..+\.(\d+)\.\d+\.tmp")


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: a reader sees the old or the new file, never a mix.

    ``durable`` also fsyncs the file and its folder, so the new content survives a crash.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: Path, *, kept_younger: float = 0.0) -> int:
    """Remove the temporary files of writes a crash interrupted; returns how many. A temporary
    file of another live process (a second daemon sharing the folder) is its write in progress;
    so is one written to in the last ``kept_younger`` seconds (a fleet's shared folder: the pid
    may be another host's)."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        match = _LEFTOVER.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and pid_alive(pid):
            continue
        if kept_younger and time.time() - entry.stat(follow_symlinks=False).st_mtime < kept_younger:
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed += 1
    return removed
