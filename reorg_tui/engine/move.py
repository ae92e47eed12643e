"""The move protocol: a file is in exactly one place at every instant, and nothing is overwritten.

Same filesystem: ``renameat2(RENAME_NOREPLACE)`` (or link, then unlink, where the flag is not
supported).  Across filesystems: copy into a staging folder on the destination's filesystem,
fsync, verify, publish without overwriting, fsync the folder, and only then remove the source.

After a crash the staging folder may hold partial copies (removed by ``recover``), and a file may
be both published and still in the source: the next attempt finds the destination name taken by a
*twin* (the same inode, or the same size, mtime and bytes) and removes the source, counting the
file once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import itertools
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from reorg_tui.engine.naming import numbered

STAGING = ".reorg-tmp"
CHUNK = 8 * 1024 * 1024
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

# Operator-fixable faults: worth retrying with backoff before a file is given up on.
TRANSIENT = frozenset(
    {
        errno.EBUSY,
        errno.EAGAIN,
        errno.EIO,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EINTR,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.ENOTCONN,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.ENOMEM,
        errno.EMFILE,
        errno.ENFILE,
    }
)
# Out of space: the file waits without using up its retries.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class MoveError(Exception):
    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code

    @classmethod
    def from_os(cls, exc: OSError, doing: str) -> MoveError:
        code = exc.errno
        name = errno.errorcode.get(code, "E?") if code is not None else "E?"
        text = exc.strerror or str(exc)
        return cls(f"{doing}: {name} {text}", transient=code in TRANSIENT, code=code)


class Vanished(Exception):
    """The source disappeared before it could be moved: not an error."""


class Abandoned(Exception):
    """A stop was asked for during a copy; the source is untouched."""


class Conflict(Exception):
    """The destination name is taken and the policy says quarantine."""

    def __init__(self, existing: str) -> None:
        super().__init__(f"name collision: {existing} already exists")
        self.existing = existing


@dataclass(frozen=True)
class Outcome:
    kind: str  # "moved", "copied", "twin", "deduped", "skipped"
    path: str  # where the file is now (or the existing file, for skipped)
    size: int


def _load_renameat2() -> Callable[[str, str], None] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int

    def renameat2(src: str, dst: str) -> None:
        if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE):
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), src, None, dst)

    return renameat2


_renameat2 = _load_renameat2()


def rename_noreplace(src: str, dst: str) -> None:
    """Atomically rename src to dst; FileExistsError if dst exists. Never overwrites."""
    if _renameat2 is not None:
        try:
            _renameat2(src, dst)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                raise
    # link() refuses to replace; for an instant the file has two names, which recovery handles.
    os.link(src, dst, follow_symlinks=False)
    os.unlink(src)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def same_bytes(a: str, b: str) -> bool:
    fa = os.open(a, _OPEN_READ)
    try:
        fb = os.open(b, _OPEN_READ)
        try:
            if not (stat.S_ISREG(os.fstat(fa).st_mode) and stat.S_ISREG(os.fstat(fb).st_mode)):
                return False
            while True:
                x, y = os.read(fa, 1 << 20), os.read(fb, 1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
        finally:
            os.close(fb)
    finally:
        os.close(fa)


def is_twin(src: str, st: os.stat_result, existing: str) -> bool:
    """True when ``existing`` is this very file published by an earlier, interrupted move."""
    try:
        other = os.lstat(existing)
    except FileNotFoundError:
        return False
    if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
        return True
    return (
        stat.S_ISREG(other.st_mode)
        and other.st_size == st.st_size
        and other.st_mtime_ns == st.st_mtime_ns
        and same_bytes(src, existing)
    )


class Mover:
    """Moves files into one root (the destination tree, or the quarantine)."""

    def __init__(
        self,
        root: str,
        *,
        verify: bool = False,
        stop: threading.Event | None = None,
        room: Callable[[int], bool] | None = None,
    ):
        self.root = root
        self.room = room  # asked before a copy whether the destination can take that many bytes
        self._rename_lane = threading.Lock()
        self._exdev: set[int] = set()  # source devices a rename into root failed from with EXDEV
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique per run: names never repeat
        self._serial = itertools.count()
        self.fsync_seconds = 0.0
        self.staging = os.path.join(root, STAGING)
        self.verify = verify
        self.stop = stop or threading.Event()
        self.is_root = os.geteuid() == 0

    def recover(self) -> int:
        """Remove partial copies left by a crash. Returns how many were removed."""
        removed = 0
        try:
            entries = list(os.scandir(self.staging))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                os.unlink(entry.path)
                removed += 1
        return removed

    def move(
        self,
        src: str,
        folder: str,
        name: str,
        on_conflict: str = "rename",
        st: os.stat_result | None = None,
    ) -> Outcome:
        """Move ``src`` to ``folder/name`` (folder absolute, inside root) under the policy.

        ``st`` is the source's lstat if the caller just took it: a rename never follows a link
        and a copy checks again what it opened, so it only saves a system call.
        """
        if st is None:
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                raise Vanished(src) from None
        if not stat.S_ISREG(st.st_mode):
            raise MoveError("not a regular file", transient=False)

        def by_rename(dst: str) -> None:
            # Renames out of one folder serialize on its lock in the kernel anyway; queueing
            # here instead of there costs far less than threads contending for it.
            with self._rename_lane:
                rename_noreplace(src, dst)

        if st.st_dev not in self._exdev:
            try:
                return self._publish(src, st, folder, name, on_conflict, by_rename, "moved")
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Remembered per source device: the next file from there goes straight to a copy.
                self._exdev.add(st.st_dev)
        return self._move_by_copy(src, st, folder, name, on_conflict)

    def _move_by_copy(
        self, src: str, st: os.stat_result, folder: str, name: str, on_conflict: str
    ) -> Outcome:
        tmp = self._copy_to_staging(src, st)
        try:

            def by_tmp(dst: str) -> None:
                rename_noreplace(tmp, dst)

            outcome = self._publish(src, st, folder, name, on_conflict, by_tmp, "copied")
            if outcome.kind == "copied":
                fsync_dir(os.path.dirname(outcome.path))
                try:
                    os.unlink(src)
                except FileNotFoundError:
                    pass  # removed behind our back after the copy was verified: still one copy
            return outcome
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _publish(
        self,
        src: str,
        st: os.stat_result,
        folder: str,
        name: str,
        on_conflict: str,
        put: Callable[[str], None],
        kind: str,
    ) -> Outcome:
        candidate = name
        for n in range(1, 100_000):
            dst = f"{folder}/{candidate}"
            try:
                self._put(src, folder, dst, put)
                return Outcome(kind, dst, st.st_size)
            except FileExistsError:
                pass
            if n == 1:
                if is_twin(src, st, dst):
                    _unlink_source(src)
                    return Outcome("twin", dst, st.st_size)
                if on_conflict == "skip":
                    return Outcome("skipped", dst, st.st_size)
                if on_conflict == "quarantine":
                    raise Conflict(dst)
                if on_conflict == "dedupe" and same_bytes(src, dst):
                    _unlink_source(src)
                    return Outcome("deduped", dst, st.st_size)
            candidate = numbered(name, n)
        raise MoveError(f"no free name for {name!r} in {folder}", transient=False)

    def _put(self, src: str, folder: str, dst: str, put: Callable[[str], None]) -> None:
        try:
            put(dst)
            return
        except FileNotFoundError:
            if not os.path.lexists(src):
                raise Vanished(src) from None
        try:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:
            raise MoveError(f"{folder} exists and is not a folder", transient=False) from None
        except NotADirectoryError:
            raise MoveError(f"a part of {folder} is not a folder", transient=False) from None
        put(dst)

    def _copy_to_staging(self, src: str, st: os.stat_result) -> str:
        if self.room is not None and not self.room(st.st_size):
            raise MoveError("waiting for disk space", transient=True, code=errno.ENOSPC)
        try:
            fd_in = os.open(src, _OPEN_READ)
        except FileNotFoundError:
            raise Vanished(src) from None
        try:
            fst = os.fstat(fd_in)
            if not stat.S_ISREG(fst.st_mode):
                raise MoveError("not a regular file", transient=False)
            if (fst.st_size, fst.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise MoveError("source changed before its copy", transient=True)
            tmp = f"{self.staging}/{self._token}-{next(self._serial)}.part"
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd_out = os.open(tmp, flags, 0o600)
            except FileNotFoundError:  # the first copy, or the staging folder was removed
                os.makedirs(self.staging, exist_ok=True)
                fd_out = os.open(tmp, flags, 0o600)
            try:
                digest = self._copy_data(fd_in, fd_out, fst.st_size)
                # Setuid and setgid bits are never carried over; ownership follows the source
                # only when we are root (anyone else cannot give files away).
                os.fchmod(fd_out, stat.S_IMODE(fst.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
                if self.is_root:
                    os.fchown(fd_out, fst.st_uid, fst.st_gid)
                os.utime(fd_out, ns=(fst.st_atime_ns, fst.st_mtime_ns))
                synced = time.perf_counter()
                os.fsync(fd_out)
                # A running average of how long the disk makes a copy wait: the engine runs copies
                # in parallel only where there is waiting to overlap.
                self.fsync_seconds = 0.9 * self.fsync_seconds + 0.1 * (time.perf_counter() - synced)
                if os.fstat(fd_out).st_size != fst.st_size:
                    raise MoveError("copy has the wrong size", transient=True, code=errno.EIO)
                after = os.fstat(fd_in)
                if (after.st_size, after.st_mtime_ns) != (fst.st_size, fst.st_mtime_ns):
                    raise MoveError("source changed during its copy", transient=True)
                if digest is not None and _sha256_fd(fd_out) != digest:
                    raise MoveError("checksum of the copy differs", transient=True, code=errno.EIO)
            except BaseException:
                os.close(fd_out)
                os.unlink(tmp)
                raise
            os.close(fd_out)
            return tmp
        finally:
            os.close(fd_in)

    def _copy_data(self, fd_in: int, fd_out: int, size: int) -> bytes | None:
        if self.verify:
            digest = hashlib.sha256()
            while chunk := os.read(fd_in, 1 << 20):
                if self.stop.is_set():
                    raise Abandoned()
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd_out, view) :]
            return digest.digest()
        offset = 0
        while offset < size:
            if self.stop.is_set():
                raise Abandoned()
            sent = os.sendfile(fd_out, fd_in, offset, min(CHUNK, size - offset))
            if sent == 0:
                break
            offset += sent
        return None


def _sha256_fd(fd: int) -> bytes:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.digest()


def _unlink_source(src: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(src)
