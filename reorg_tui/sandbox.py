"""The demo's sandbox folder: made with its owner's mark, removed whole however the demo ends, and
a sandbox left by a demo that was killed (SIGKILL, a crash, power) removed by the next demo.

A sandbox is ``TMPDIR/reorg-demo-XXXXXXXX`` holding ``.reorg-demo-owner``: the pid that made it,
that process's start time (clock ticks after boot, /proc/PID/stat) and the boot's id. A folder
is stale only if all of these hold, and nothing else is ever removed: its name has the prefix; it
is a real folder (not a symlink) owned by this user; its mark is a small regular file, ours, that
reads as a mark; and the process it names is gone (no such pid, or a pid since reused by another
process, or another boot).

The demo sets ``chattr +i`` on a folder (as root; else it drops the write bit): removal clears
both on every folder in the sandbox first, or ``rm -rf`` fails on it, even as root.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import shutil
import stat
import struct
import tempfile
from pathlib import Path

from reorg_tui.engine.store import pid_alive

PREFIX = "reorg-demo-"
MARK = ".reorg-demo-owner"
_MARK_MAX = 4096
# <linux/fs.h>: _IOR('f', 1, long), _IOW('f', 2, long); the kernel reads and writes an int.
_LONG = struct.calcsize("l")
FS_IOC_GETFLAGS = 0x80000000 | (_LONG << 16) | (ord("f") << 8) | 1
FS_IOC_SETFLAGS = 0x40000000 | (_LONG << 16) | (ord("f") << 8) | 2
_LOCKING_FLAGS = 0x00000010 | 0x00000020  # FS_IMMUTABLE_FL, FS_APPEND_FL


def make() -> Path:
    """A new sandbox, marked as this process's (``sweep`` first removes killed demos' ones)."""
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / MARK).write_text(json.dumps(_identity(os.getpid())))
    return root


def remove(root: Path) -> bool:
    """Remove a sandbox whole: its locked folders unlocked first. True if it is gone."""
    unlock(root)
    shutil.rmtree(root, ignore_errors=True)
    return not os.path.lexists(root)


def sweep(folder: Path | None = None) -> list[Path]:
    """Remove the sandboxes in ``folder`` (the temporary folder) whose demo is gone; returns them."""
    where = Path(tempfile.gettempdir() if folder is None else folder)
    removed = []
    try:
        names = [name for name in os.listdir(where) if name.startswith(PREFIX)]
    except OSError:
        return []
    for name in names:
        root = where / name
        if is_stale(root) and remove(root):
            removed.append(root)
    return removed


def is_stale(root: Path) -> bool:
    """True only for a sandbox of this user's whose demo is gone (see the module's comment)."""
    try:
        info = os.lstat(root)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return False
        fd = os.open(root / MARK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            mark = os.fstat(fd)
            if not stat.S_ISREG(mark.st_mode) or mark.st_uid != os.geteuid() or mark.st_size > _MARK_MAX:
                return False
            data = json.loads(os.read(fd, _MARK_MAX))
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or type(data.get("pid")) is not int or data["pid"] <= 0:
        return False
    pid = data["pid"]
    if not pid_alive(pid):
        return True
    started = _start_ticks(pid)
    if started is None:
        return False  # alive, and not to be told apart: left alone
    return started != data.get("started") or _boot_id() != data.get("boot")  # the pid reused


def unlock(root: Path) -> None:
    """Clear the immutable and append-only flags on ``root`` and every folder below it, and give
    each back its owner's write bit: what the demo's flaky folder took away. Never follows a link."""
    for folder, dirs, _files in os.walk(root, followlinks=False):
        _unlock_folder(folder)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]


def _unlock_folder(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        flags = array.array("i", [0])
        with contextlib.suppress(OSError):  # a filesystem without flags (some tmpfs) has none set
            fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
            if flags[0] & _LOCKING_FLAGS:
                flags[0] &= ~_LOCKING_FLAGS
                fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags)
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | stat.S_IRWXU)
    finally:
        os.close(fd)


def _identity(pid: int) -> dict[str, object]:
    """What tells this process from any other that has (or will have) its pid."""
    return {"pid": pid, "started": _start_ticks(pid), "boot": _boot_id()}


def _start_ticks(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name (field 2) is in parentheses and may hold anything: count from the last ")".
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 of stat(5): starttime
    except (IndexError, ValueError):
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
