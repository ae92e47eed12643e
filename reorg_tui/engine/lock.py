"""One instance per source, and per state folder: advisory locks on both folders themselves.

Locking the source folder (not a file in some state folder) means two instances clash however
their other settings differ; locking the state folder too means two instances on different
sources never share one ledger, retry queue, snapshot or control socket. The locks die with the
process, so a SIGKILL never leaves them stale. Between the two the state folder is checked (and
made) as statedir.py says: a folder another user could write is refused before anything is
written in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

from reorg_tui.engine import statedir
from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.store import write_atomic


class AlreadyRunning(ReorgError):
    """Another instance holds the source's lock (or, with ``state_dir``, the state folder's)."""

    exit_code = ExitCode.ALREADY_RUNNING

    def __init__(self, source: Path, pid: int | None, *, state_dir: Path | None = None) -> None:
        who = f" (pid {pid})" if pid else ""
        if state_dir is None:
            message = f"another reorg-tui instance{who} is already processing {source}"
        else:
            message = (
                f"another reorg-tui instance{who} keeps its state in {state_dir}: give this one "
                f"(for {source}) a --state-dir of its own"
            )
        super().__init__(message)
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


def _take(path: Path) -> int | None:
    """A descriptor of the folder ``path`` holding its exclusive flock; None if another has it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _let_go(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class SourceLock:
    """The source's lock, then the state folder checked, made and locked (AlreadyRunning if
    another instance holds either; UntrustedStateDir if the state folder is not safe to use)."""

    def __init__(self, source: Path, state_dir: Path) -> None:
        self.source = source
        self.state_dir = state_dir
        self.info = state_dir / "lock.json"
        self._fds: list[int] = []

    def acquire(self) -> None:
        fd = _take(self.source)
        if fd is None:
            raise AlreadyRunning(self.source, lock_holder(self.source))
        self._fds = [fd]
        try:
            statedir.prepare(self.state_dir)
            held = _take(self.state_dir)
            if held is None:
                raise AlreadyRunning(self.source, lock_holder(self.state_dir), state_dir=self.state_dir)
            self._fds.append(held)
        except BaseException:
            self.release()
            raise
        try:
            data = {"pid": os.getpid(), "source": str(self.source), "started": time.time()}
            write_atomic(self.info, json.dumps(data).encode())
        except OSError:
            pass  # the lock itself is what counts; the info file is a courtesy

    def release(self) -> None:
        if not self._fds:
            return
        if len(self._fds) > 1:  # the info file is ours only while we hold the state folder
            with contextlib.suppress(OSError):
                self.info.unlink(missing_ok=True)
        for fd in reversed(self._fds):
            _let_go(fd)
        self._fds = []
