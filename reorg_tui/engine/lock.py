"""One instance per source, and per state folder: advisory locks on both folders themselves,
and one on the source's path.

Locking the source folder (not a file in some state folder) means two instances clash however
their other settings differ; locking the state folder too means two instances on different
sources never share one ledger, retry queue, snapshot or control socket. The locks die with the
process, so a SIGKILL never leaves them stale. Between the two the state folder is checked (and
made) as statedir.py says: a folder another user could write is refused before anything is
written in it.

A folder lock follows the folder, not its name: after ``mv inbox inbox.old && mkdir inbox`` the
new ``inbox`` is unlocked until the first instance notices (roots.py) and stops. So the path is
locked too, with a file in this user's default state folder for it (``locate.default_state_dir``,
named from the path whatever ``--state-dir`` says; a file, not that folder, whose own lock may be
the state folder's): no second instance of this user starts on that path while the first lives.
And a source inside a folder another process holds (another instance's source: with
``--recursive`` it would take the same files) is refused.

With --shard K/N the source and its path are locked shared, and each shard takes a lock of its
own (shard_lock.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from pathlib import Path

from reorg_tui.engine import statedir
from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.locate import default_state_dir
from reorg_tui.engine.shard import Shard
from reorg_tui.engine.store import write_atomic

PATH_LOCK = "path.lock"  # in the source's default state folder: the lock on the source's path


class AlreadyRunning(ReorgError):
    """Another instance holds the source's lock (or, with ``state_dir``, the state folder's; with
    ``inside``, a folder the source is inside)."""

    exit_code = ExitCode.ALREADY_RUNNING

    def __init__(
        self,
        source: Path,
        pid: int | None,
        *,
        inside: Path | None = None,
        state_dir: Path | None = None,
        message: str | None = None,
    ) -> None:
        who = f" (pid {pid})" if pid else ""
        if message is not None:
            pass
        elif state_dir is not None:
            message = (
                f"another reorg-tui instance{who} keeps its state in {state_dir}: give this one "
                f"(for {source}) a --state-dir of its own"
            )
        else:
            nested = f", and {inside} is inside it" if inside is not None else ""
            message = f"another reorg-tui instance{who} is already processing {source}{nested}"
        super().__init__(message)
        self.pid = pid


class BadLockFile(ReorgError):
    """Something other than a regular file where a lock file belongs (a FIFO, a folder, a
    symlink, a device): planted, or left by a mistake. The lock cannot be trusted, so nothing
    runs (exit code 2, as for any state that is not fit to use)."""

    exit_code = ExitCode.USAGE


class ShardUnguarded(ReorgError):
    """A shard cannot take its shard locks (lock.py, shard_lock.py): without them nothing keeps
    a second copy of it, or shards of another N, from running beside it, so it does not run."""

    exit_code = ExitCode.USAGE


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


def flocks_of_others() -> dict[tuple[int, int], int]:
    """(st_dev, st_ino) -> pid of every flock that another process holds now (exclusive, or
    shared: a shard's on its source), from /proc/locks (empty if it cannot be read)."""
    return _flock_table() or {}


def _flock_table() -> dict[tuple[int, int], int] | None:
    """``flocks_of_others``, or None where /proc/locks cannot be read."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    me = os.getpid()
    held: dict[tuple[int, int], int] = {}
    for line in lines:
        parts = line.split()  # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("->": a waiter)
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[3] not in ("WRITE", "READ"):
            continue
        try:
            pid = int(parts[4])
            major, minor, ino = parts[5].split(":")
            key = os.makedev(int(major, 16), int(minor, 16)), int(ino)
        except ValueError:
            continue
        if pid != me:
            held[key] = pid
    return held


def source_is_locked(source: Path) -> bool:
    """True while another process holds the source: read from /proc/locks by the folder's
    inode, the lock never touched (a look that took it, even for an instant, would refuse an
    instance starting then). Only where that table cannot be read, the lock is tried and let go
    at once."""
    table = _flock_table()
    if table is not None:
        try:
            st = os.stat(source)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in table
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


def take_folder(path: Path, mode: int = fcntl.LOCK_EX) -> int | None:
    """A descriptor of the folder ``path`` holding its flock (exclusive, or ``mode``); None if
    another process holds one that conflicts."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def let_go(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class SourceLock:
    """The source's lock and its path's, then the state folder checked, made and locked
    (AlreadyRunning if another instance holds any; UntrustedStateDir if the state folder is not
    safe to use). With ``shard``, the source and its path are shared with the other shards of the
    same N, and the shard's own lock is taken (see the module's docstring)."""

    def __init__(
        self, source: Path, state_dir: Path, shard: Shard | None = None, *, shared: bool = False
    ) -> None:
        self.source = source
        self.state_dir = state_dir
        self.shard = shard
        # A fleet's instance (--coordinator): the source and its path are shared with the other
        # instances of the fleet, never the state folder (an instance without either refuses them,
        # and they it, as shards do).
        self.shared = shared
        self.info = state_dir / "lock.json"
        self._fd: int | None = None
        self._state_fd: int | None = None
        self._path_fds: list[int] = []  # path.lock first (and, for a shard, its own two)
        self.keep_info = False  # set when the state folder was replaced: its lock.json is not ours
        self.warning: str | None = None  # the path could not be locked (the run goes on without)

    @property
    def held(self) -> os.stat_result:
        """The locked folder's own identity (fstat of the descriptor the lock is on)."""
        assert self._fd is not None
        return os.fstat(self._fd)

    def acquire(self) -> None:
        from reorg_tui.engine import shard_lock  # (it uses this module)

        alone = self.shard is None and not self.shared
        fd = take_folder(self.source, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if fd is None:
            pid = lock_holder(self.source)
            if self.shard is None:
                raise shard_lock.refused_beside_shards(self.source, pid)
            raise shard_lock.source_held_alone(self.source, pid, self.shard)
        self._fd = fd
        try:
            self._path_fds, self.warning = _lock_path(self.source, self.shard, self.shared)
            _refuse_if_inside_another(self.source, os.fstat(fd))
            statedir.prepare(self.state_dir)
            held = take_folder(self.state_dir)
            if held is None:
                raise AlreadyRunning(self.source, lock_holder(self.state_dir), state_dir=self.state_dir)
            self._state_fd = held
        except BaseException:
            self.release()
            raise
        try:
            data = {"pid": os.getpid(), "source": str(self.source), "started": time.time()}
            if self.shard is not None:
                data["shard"] = str(self.shard)
            write_atomic(self.info, json.dumps(data).encode())
        except OSError:
            pass  # the lock itself is what counts; the info file is a courtesy

    def release(self) -> None:
        if self._path_fds:
            folder = default_state_dir(self.source)
            # Made for the lock alone (an apply, an undo): nothing left. A shard's lock files are
            # shared with the other shards: never removed (see the module's docstring).
            if self.shard is None and not self.shared and folder != self.info.parent:
                with contextlib.suppress(OSError):
                    (folder / PATH_LOCK).unlink()
                    folder.rmdir()
            for held in self._path_fds:
                os.close(held)  # closing lets go of its flock
            self._path_fds = []
        if self._state_fd is not None:  # the info file is ours only while we hold the state folder
            if not self.keep_info:
                with contextlib.suppress(OSError):
                    self.info.unlink(missing_ok=True)
            let_go(self._state_fd)
            self._state_fd = None
        if self._fd is not None:
            let_go(self._fd)
            self._fd = None


def open_lock_file(path: Path) -> int:
    """A descriptor of the lock file ``path`` (made if missing), to flock. Never blocks and never
    follows a link: a FIFO there would hold a blocking open for ever (retried after a signal's
    handler, so SIGTERM would not end it), a folder or a symlink is not a lock anyone else takes.
    BadLockFile (one line, exit 2) for anything but a regular file; OSError otherwise."""
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            raise BadLockFile(_not_a_lock_file(path, None)) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadLockFile(_not_a_lock_file(path, st))
    return fd


def _not_a_lock_file(path: Path, st: os.stat_result | None) -> str:
    if st is None:
        try:
            st = os.lstat(path)
        except OSError:
            st = None
    mode = st.st_mode if st is not None else 0
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    )
    kind = next((name for test, name in kinds if test(mode)), "something else")
    return (
        f"the lock file {path} is {kind}, not a regular file: remove it (reorg-tui makes it "
        "again), then start again"
    )


def _lock_path(source: Path, shard: Shard | None, shared: bool = False) -> tuple[list[int], str | None]:
    """Lock ``source``'s path: a flock on ``path.lock`` in this user's default state folder for
    it (and, for a shard, its own locks beside it). Where that cannot be made (a service user's
    home that is not writable), the folder lock alone stands: returns no descriptor and a
    warning."""
    from reorg_tui.engine import shard_lock  # (it uses this module)

    folder = default_state_dir(source)
    try:
        statedir.prepare(folder)  # made as a state folder is (0700, 0755 above, whatever the umask)
        fd = open_lock_file(folder / PATH_LOCK)
    except (OSError, statedir.UntrustedStateDir) as exc:
        why = exc.strerror or exc if isinstance(exc, OSError) else exc
        if shard is not None:  # its shard locks are its only guard: never run without them
            raise _unguarded(source, shard, folder, why) from None
        return [], (
            f"cannot lock the path {source} (in {folder}: {why}); only the folder "
            f"is locked: were it replaced, another instance could start on it before this one stops"
        )
    if shard is None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise shard_lock.refused_beside_shards(source, lock_holder(folder / PATH_LOCK)) from None
        return [fd], None
    held = [fd]
    try:
        shard_lock.take(folder, source, shard, held)
    except BaseException as exc:
        for opened in held:
            os.close(opened)
        if isinstance(exc, OSError):
            raise _unguarded(source, shard, folder, exc.strerror or exc) from None
        raise
    return held, None


def _unguarded(source: Path, shard: Shard, folder: Path, why: object) -> ShardUnguarded:
    return ShardUnguarded(
        f"shard {shard} cannot take its locks on {source} (in {folder}: {why}); without them a "
        "second copy of this shard, or shards of another N, could run beside it: make that folder "
        "one this user can write (or set XDG_STATE_HOME), then start again"
    )


def _refuse_if_inside_another(source: Path, own: os.stat_result) -> None:
    """Refuse a source inside a folder another process holds a flock on: another instance's
    source, which it would scan into with --recursive (not knowing whether it does, refused
    either way). Called with this source's own lock held: of two starting at once, one sees
    the other (a recursive instance also leaves alone a folder held below it: intake.py)."""
    held = flocks_of_others()
    if not held:
        return
    for parent in source.parents:
        try:
            st = os.stat(parent)
        except OSError:
            continue
        pid = held.get((st.st_dev, st.st_ino))
        if pid is not None and (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino):
            raise AlreadyRunning(parent, pid, inside=source)
