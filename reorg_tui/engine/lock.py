"""One instance per source: an advisory lock on the source folder itself.

Locking the folder (not a file in some state folder) means two instances clash however their
other settings differ.  The lock dies with the process, so a SIGKILL never leaves it stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.store import write_atomic


class AlreadyRunning(ReorgError):
    """Another instance holds the source's lock."""

    exit_code = ExitCode.ALREADY_RUNNING

    def __init__(self, source: Path, pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"another reorg-tui instance{who} is already processing {source}")
        self.pid = pid


def lock_holder(path: Path) -> int | None:
    """The pid holding a flock on ``path``, read from /proc/locks, if it can be found."""
    try:
        st = os.stat(path)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == wanted:
            try:
                return int(parts[4])
            except ValueError:
                return None
    return None


def source_is_locked(source: Path) -> bool:
    """True while another process holds the source (tries the lock and lets go at once)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we took it
    return False


class SourceLock:
    def __init__(self, source: Path, state_dir: Path) -> None:
        self.source = source
        self.info = state_dir / "lock.json"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self.source, lock_holder(self.source)) from None
        self._fd = fd
        try:
            self.info.parent.mkdir(parents=True, exist_ok=True)
            data = {"pid": os.getpid(), "source": str(self.source), "started": time.time()}
            write_atomic(self.info, json.dumps(data).encode())
        except OSError:
            pass  # the lock itself is what counts; the info file is a courtesy

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.info.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
