"""The move protocol: a file is in exactly one place at every instant, and nothing is overwritten.

Every name is resolved relative to a folder descriptor from a ``Tree`` (see ``dirs``): no path
string below a configured root is resolved twice, and no symlink below it is ever followed.

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

from reorg_tui.engine.dirs import NotAFolder, Tree
from reorg_tui.engine.naming import numbered

STAGING = ".reorg-tmp"
CHUNK = 8 * 1024 * 1024
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OPEN_HANDLE = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_SET_ID = stat.S_ISUID | stat.S_ISGID

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
        errno.ENODEV,
    }
)
# No room now (out of space, or the destination is not mounted): the file waits for the disk
# gate without using up its retries.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENODEV})


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
    """The source disappeared before it could be moved, or its name now holds something that is
    not a regular file (as the scan would ignore it): not an error, nothing to move."""


class Changed(Exception):
    """The source changed after it was found ready (a writer is still at it): nothing was
    published, and it should settle again rather than use up a retry."""


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
    folder: str = ""  # its folder, relative to the mover's root


def _load_renameat2() -> Callable[[int, str, int, str], None] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int

    def renameat2(src_dir: int, src: str, dst_dir: int, dst: str) -> None:
        if func(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), _RENAME_NOREPLACE):
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), src, None, dst)

    return renameat2


_renameat2 = _load_renameat2()


def rename_noreplace(src_dir: int, src: str, dst_dir: int, dst: str) -> None:
    """Atomically rename ``src`` (in folder ``src_dir``) to ``dst`` (in ``dst_dir``), both named
    relative to folder descriptors; FileExistsError if dst exists. Never overwrites."""
    if _renameat2 is not None:
        try:
            _renameat2(src_dir, src, dst_dir, dst)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                raise
    # link() refuses to replace; for an instant the file has two names, which recovery handles.
    os.link(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
    os.unlink(src, dir_fd=src_dir)


def _lstat(name: str, folder: int) -> os.stat_result:
    return os.stat(name, dir_fd=folder, follow_symlinks=False)


class HardLinked(Exception):
    """A file with more than one name: its bytes are not read (another name would keep them)."""

    def __init__(self, links: int) -> None:
        super().__init__(f"has {links} hard links; not read or copied while another name holds it")
        self.links = links


def open_regular(name: str, folder: int, *, single_link: bool = False) -> int:
    """Open ``name`` (in ``folder``) for reading, only if it is a regular file.

    It is first opened as a bare handle (``O_PATH``: no side effect on a device, a FIFO or a
    socket, no read permission used) and checked with fstat; then that very inode is reopened
    for reading through ``/proc/self/fd``, whatever the name holds by then. Raises
    IsADirectoryError for anything but a regular file (a symlink included), HardLinked when
    ``single_link`` and the file has other names.
    """
    handle = os.open(name, _OPEN_HANDLE, dir_fd=folder)
    try:
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", name)
        if single_link and st.st_nlink > 1:
            raise HardLinked(st.st_nlink)
        try:
            return os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # no /proc: open the name again, and check it is the same inode
            fd = os.open(name, _OPEN_READ, dir_fd=folder)
            if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (st.st_ino, st.st_dev):
                os.close(fd)
                raise IsADirectoryError(errno.EISDIR, "replaced while being opened", name) from None
            return fd
    finally:
        os.close(handle)


def same_bytes(a: int, b: int) -> bool:
    """Whether the two open files are regular and hold the same bytes."""
    if not (stat.S_ISREG(os.fstat(a).st_mode) and stat.S_ISREG(os.fstat(b).st_mode)):
        return False
    offset = 0
    while True:
        x, y = os.pread(a, 1 << 20, offset), os.pread(b, 1 << 20, offset)
        if x != y:
            return False
        if not x:
            return True
        offset += len(x)


class _Source:
    """The file being moved: its folder's descriptor, its name there, and its lstat when found.
    (A plain class: one is made per file, and a frozen dataclass costs more to build.)"""

    __slots__ = ("folder", "name", "path", "st")

    def __init__(self, folder: int, name: str, path: str, st: os.stat_result) -> None:
        self.folder = folder
        self.name = name
        self.path = path  # for messages
        self.st = st

    def open(self) -> int:
        """Open it for reading; Vanished if its name no longer holds a regular file, HardLinked
        if it has other names."""
        try:
            return open_regular(self.name, self.folder, single_link=True)
        except (FileNotFoundError, IsADirectoryError):
            raise Vanished(self.path) from None

    def still_here(self) -> bool:
        """The same file (inode) is still under its name."""
        try:
            now = _lstat(self.name, self.folder)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (self.st.st_dev, self.st.st_ino)

    def remove(self) -> None:
        """Unlink the source once its bytes are safe elsewhere, unless its name now belongs to
        another file (a producer replaced it meanwhile: that one is new work, not this file)."""
        if self.still_here():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.folder)


def _same_bytes_as(src: _Source, folder: int, name: str) -> bool:
    """Whether ``name`` in ``folder`` is a regular file with the source's bytes. A source with
    other names is never read, so it is never found the same."""
    try:
        fa = src.open()
    except (Vanished, HardLinked):
        return False
    try:
        fb = open_regular(name, folder)
    except OSError:
        os.close(fa)
        return False
    try:
        return same_bytes(fa, fb)
    finally:
        os.close(fa)
        os.close(fb)


def is_twin(src: _Source, folder: int, name: str) -> bool:
    """True when ``name`` in ``folder`` is this very file published by an earlier, interrupted move."""
    try:
        other = _lstat(name, folder)
    except FileNotFoundError:
        return False
    st = src.st
    if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
        return True
    return (
        stat.S_ISREG(other.st_mode)
        and other.st_size == st.st_size
        and other.st_mtime_ns == st.st_mtime_ns
        and _same_bytes_as(src, folder, name)
    )


class _Stale(Exception):
    """A cached folder descriptor names a folder that was removed: open it afresh and retry."""


class Mover:
    """Moves files into one root (the destination tree, the quarantine, or back to the source)."""

    def __init__(
        self,
        tree: Tree,
        *,
        verify: bool = False,
        stop: threading.Event | None = None,
        room: Callable[[int], bool] | None = None,
    ):
        self.tree = tree
        self.root = tree.root
        self.room = room  # asked before a copy whether the destination can take that many bytes
        self._rename_lane = threading.Lock()
        self._exdev: set[int] = set()  # source devices a rename into root failed from with EXDEV
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique per run: names never repeat
        self._serial = itertools.count()
        self.fsync_seconds = 0.0
        self.verify = verify
        self.stop = stop or threading.Event()
        self.is_root = os.geteuid() == 0

    def recover(self) -> int:
        """Remove partial copies left by a crash. Returns how many were removed."""
        removed = 0
        try:
            with self.tree.folder(STAGING) as fd:
                for entry in list(os.scandir(fd)):
                    if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        os.unlink(entry.name, dir_fd=fd)
                        removed += 1
        except FileNotFoundError:
            return 0
        return removed

    def move(
        self,
        source: Tree,
        rel: str,
        folder: str,
        name: str,
        on_conflict: str = "rename",
        st: os.stat_result | None = None,
    ) -> Outcome:
        """Move ``rel`` (below the ``source`` tree) to ``folder/name`` below this mover's root.

        ``st`` is the source's lstat if the caller just took it: it saves a system call. Should
        the name have been swapped for something else since (a symlink, a FIFO), the rename is
        checked after the fact and undone; a copy checks what it opened before reading.
        """
        src_dir, _, src_name = rel.rpartition("/")
        for attempt in (1, 2):
            try:
                fd = source.lend(src_dir)
            except (FileNotFoundError, NotAFolder):
                # Its folder is gone, or was swapped for a symlink: the file is no longer below
                # the source root, and nothing outside it is touched.
                raise Vanished(source.path(rel)) from None
            try:
                return self._move_from(fd, src_name, source.path(rel), folder, name, on_conflict, st)
            except Vanished:
                if attempt == 2 or not src_dir:
                    raise
                source.forget()  # a cached descriptor may name a removed folder: look once more
                st = None
            finally:
                source.give_back(fd)
        raise AssertionError("unreachable")

    def _move_from(
        self,
        fd: int,
        src_name: str,
        src_path: str,
        folder: str,
        name: str,
        on_conflict: str,
        st: os.stat_result | None,
    ) -> Outcome:
        if st is None:
            try:
                st = _lstat(src_name, fd)
            except FileNotFoundError:
                raise Vanished(src_path) from None
        if not stat.S_ISREG(st.st_mode):
            raise Vanished(src_path)
        src = _Source(fd, src_name, src_path, st)

        def by_rename(folder_fd: int, dst: str) -> None:
            # Renames out of one folder serialize on its lock in the kernel anyway; queueing
            # here instead of there costs far less than threads contending for it.
            with self._rename_lane:
                rename_noreplace(fd, src_name, folder_fd, dst)
            _check_renamed(src, folder_fd, dst)

        if st.st_dev not in self._exdev:
            try:
                return self._fresh(lambda: self._publish(src, folder, name, on_conflict, by_rename, "moved"))
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Remembered per source device: the next file from there goes straight to a copy.
                self._exdev.add(st.st_dev)
        return self._fresh(lambda: self._move_by_copy(src, folder, name, on_conflict))

    def _fresh(self, action: Callable[[], Outcome]) -> Outcome:
        """Run ``action``; if a cached folder turned out removed, once more with fresh folders."""
        try:
            return action()
        except _Stale:
            self.tree.forget()
        try:
            return action()
        except _Stale:
            raise MoveError(f"folders under {self.root} keep disappearing", transient=True) from None

    def _move_by_copy(self, src: _Source, folder: str, name: str, on_conflict: str) -> Outcome:
        staging = self._lend(STAGING)
        try:
            tmp, copy = self._copy_to_staging(src, staging)
            published = False
            try:

                def by_tmp(folder_fd: int, dst: str) -> None:
                    nonlocal published
                    rename_noreplace(staging, tmp, folder_fd, dst)
                    published = True  # the temporary name is gone with the rename
                    self._finish_copy(src, folder_fd, dst, copy)

                return self._publish(src, folder, name, on_conflict, by_tmp, "copied")
            finally:
                if not published:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp, dir_fd=staging)
        finally:
            self.tree.give_back(staging)

    def _finish_copy(self, src: _Source, folder: int, name: str, copy: os.stat_result) -> None:
        """The copy is published: make its folder durable, then remove the source, so that there
        is one copy. If the fsync fails, the source cannot be removed (a read-only mount, an
        immutable folder), or the destination was unmounted under the copy (its bytes went where
        no one can reach them), take the published copy back: the file stays in the source alone."""
        try:
            os.fsync(folder)
            if os.stat(self.root).st_dev != copy.st_dev:
                raise MoveError(f"{self.root} was unmounted during the copy", transient=True)
            src.remove()
        except (OSError, MoveError) as exc:
            with contextlib.suppress(OSError):
                if _lstat(name, folder).st_ino == copy.st_ino:
                    os.unlink(name, dir_fd=folder)
                    os.fsync(folder)
            if isinstance(exc, MoveError):
                raise
            raise MoveError.from_os(exc, "remove the source after its copy") from None

    def _lend(self, folder: str) -> int:
        """A descriptor for ``folder`` below the root, made if missing; refused if anything on
        the way is a symlink or a file."""
        try:
            return self.tree.lend(folder, create=True)
        except NotAFolder as exc:
            raise MoveError(f"{self.tree.path(folder)}: {exc.strerror}", transient=False) from None
        except FileNotFoundError:
            raise _Stale() from None  # a folder above it was removed since it was opened

    def _publish(
        self,
        src: _Source,
        folder: str,
        name: str,
        on_conflict: str,
        put: Callable[[int, str], None],
        kind: str,
    ) -> Outcome:
        fd = self._lend(folder)
        try:
            return self._publish_in(src, fd, folder, name, on_conflict, put, kind)
        finally:
            self.tree.give_back(fd)

    def _publish_in(
        self,
        src: _Source,
        fd: int,
        folder: str,
        name: str,
        on_conflict: str,
        put: Callable[[int, str], None],
        kind: str,
    ) -> Outcome:
        size = src.st.st_size
        candidate = name
        for n in range(1, 100_000):
            try:
                put(fd, candidate)
                return Outcome(kind, self.tree.path(folder, candidate), size, folder)
            except FileExistsError:
                pass
            except FileNotFoundError:
                if not src.still_here():
                    raise Vanished(src.path) from None
                raise _Stale() from None  # the source is there, so the folder is what went
            # An interrupted earlier move may have published this very file under any of the
            # names tried (after a collision, "name (1)"): finding it there ends the move.
            if is_twin(src, fd, candidate):
                src.remove()
                return Outcome("twin", self.tree.path(folder, candidate), size, folder)
            if n == 1:
                if on_conflict == "skip":
                    return Outcome("skipped", self.tree.path(folder, candidate), size, folder)
                if on_conflict == "quarantine":
                    raise Conflict(self.tree.path(folder, candidate))
                if on_conflict == "dedupe" and _same_bytes_as(src, fd, candidate):
                    src.remove()
                    return Outcome("deduped", self.tree.path(folder, candidate), size, folder)
            candidate = numbered(name, n)
        raise MoveError(f"no free name for {name!r} in {self.tree.path(folder)}", transient=False)

    def _copy_to_staging(self, src: _Source, staging: int) -> tuple[str, os.stat_result]:
        """Copy into a new file in the staging folder; returns its name and its fstat."""
        st = src.st
        if self.room is not None and not self.room(st.st_size):
            raise MoveError("waiting for disk space", transient=True, code=errno.ENOSPC)
        try:
            fd_in = src.open()
        except HardLinked as exc:
            # Across filesystems the other names would keep the old bytes: it waits, and once
            # the producer drops its other name, the next attempt copies it.
            raise MoveError(str(exc), transient=True) from None
        try:
            fst = os.fstat(fd_in)
            if (fst.st_ino, fst.st_size, fst.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                raise Changed(src.path)
            tmp = f"{self._token}-{next(self._serial)}.part"
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd_out = os.open(tmp, flags, 0o600, dir_fd=staging)
            except FileNotFoundError:  # the staging folder was removed behind our back
                raise _Stale() from None
            try:
                digest = self._copy_data(fd_in, fd_out, fst.st_size)
                # Setuid and setgid bits are never carried over; ownership follows the source
                # only when we are root (anyone else cannot give files away).
                os.fchmod(fd_out, stat.S_IMODE(fst.st_mode) & ~_SET_ID)
                if self.is_root and (fst.st_uid, fst.st_gid) != (os.geteuid(), os.getegid()):
                    os.fchown(fd_out, fst.st_uid, fst.st_gid)
                os.utime(fd_out, ns=(fst.st_atime_ns, fst.st_mtime_ns))
                synced = time.perf_counter()
                os.fsync(fd_out)
                # A running average of how long the disk makes a copy wait: the engine runs copies
                # in parallel only where there is waiting to overlap.
                self.fsync_seconds = 0.9 * self.fsync_seconds + 0.1 * (time.perf_counter() - synced)
                after = os.fstat(fd_in)
                if (after.st_size, after.st_mtime_ns) != (fst.st_size, fst.st_mtime_ns):
                    raise Changed(src.path)  # first: a writer explains a size that differs
                copied = os.fstat(fd_out)
                if copied.st_size != fst.st_size:
                    raise MoveError("copy has the wrong size", transient=True, code=errno.EIO)
                if digest is not None and _sha256_fd(fd_out) != digest:
                    raise MoveError("checksum of the copy differs", transient=True, code=errno.EIO)
            except BaseException:
                os.close(fd_out)
                os.unlink(tmp, dir_fd=staging)
                raise
            os.close(fd_out)
            return tmp, copied
        finally:
            os.close(fd_in)

    def _copy_data(self, fd_in: int, fd_out: int, size: int) -> bytes | None:
        if self.verify:
            digest = hashlib.sha256()
            left = size  # what was there when it was opened: bytes appended since are not ours
            while left > 0 and (chunk := os.read(fd_in, min(1 << 20, left))):
                left -= len(chunk)
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


def _check_renamed(src: _Source, folder: int, name: str) -> None:
    """After a rename: if what arrived is not a regular file, the source name was swapped (for
    a symlink, a FIFO...) after it was found. Put it back; nothing behind it was touched."""
    try:
        now = _lstat(name, folder)
    except FileNotFoundError:
        return  # taken away at once by someone else: it did arrive
    if stat.S_ISREG(now.st_mode):
        if now.st_mode & _SET_ID:
            _drop_set_id(folder, name, now)
        return
    try:
        rename_noreplace(folder, name, src.folder, src.name)
    except OSError as exc:
        raise MoveError(
            f"swapped for a non-file during its move; left at {name}: {exc}", transient=False
        ) from None
    raise Vanished(src.path)  # back where it was, as something the scan ignores


def _drop_set_id(folder: int, name: str, st: os.stat_result) -> None:
    """A renamed file keeps its inode, mode bits included: setuid and setgid are taken off it,
    as a copy never has them. Changed through a bare handle, so no read permission is needed
    and a symlink swapped in meanwhile is not followed."""
    handle = os.open(name, _OPEN_HANDLE, dir_fd=folder)
    try:
        now = os.fstat(handle)
        if stat.S_ISREG(now.st_mode) and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.chmod(f"/proc/self/fd/{handle}", stat.S_IMODE(now.st_mode) & ~_SET_ID)
    finally:
        os.close(handle)
