"""File operations named relative to folder descriptors, never by re-resolving a path: the
no-overwrite rename, opening a file only if it is a regular file, and the checks a move makes
on what it finds (a twin of the file, a swap for a symlink, setuid bits)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import stat
import sys
from collections.abc import Callable

from reorg_tui.engine.errors import HardLinked, MoveError, Vanished

_RENAME_NOREPLACE = 1
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OPEN_HANDLE = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
SET_ID = stat.S_ISUID | stat.S_ISGID


def _load_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    # No argtypes: called with ints and bytes only, which ctypes passes as int and char * itself,
    # faster than through converters (this call is made once per file moved).
    func.restype = ctypes.c_int
    return func  # type: ignore[no-any-return]


_renameat2 = _load_renameat2()
_FS_ENCODING = sys.getfilesystemencoding()


def try_rename_noreplace(src_dir: int, src: str, dst_dir: int, dst: str) -> int:
    """``rename_noreplace`` for the hot path: returns 0, or the errno it failed with (no
    exception is built). -1 where renameat2 is missing: use ``rename_noreplace``."""
    if _renameat2 is None:
        return -1
    if _renameat2(
        src_dir,
        src.encode(_FS_ENCODING, "surrogateescape"),
        dst_dir,
        dst.encode(_FS_ENCODING, "surrogateescape"),
        _RENAME_NOREPLACE,
    ):
        return ctypes.get_errno()
    return 0


def rename_noreplace(src_dir: int, src: str, dst_dir: int, dst: str) -> None:
    """Atomically rename ``src`` (in folder ``src_dir``) to ``dst`` (in ``dst_dir``), both named
    relative to folder descriptors; FileExistsError if dst exists. Never overwrites."""
    code = try_rename_noreplace(src_dir, src, dst_dir, dst)
    if code == 0:
        return
    if code not in (-1, errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        raise OSError(code, os.strerror(code), src, None, dst)
    # link() refuses to replace; for an instant the file has two names, which recovery handles.
    os.link(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
    os.unlink(src, dir_fd=src_dir)


def lstat_at(name: str, folder: int) -> os.stat_result:
    return os.stat(name, dir_fd=folder, follow_symlinks=False)


def open_regular(name: str, folder: int, *, single_link: bool = False) -> tuple[int, os.stat_result]:
    """Open ``name`` (in ``folder``) for reading, only if it is a regular file; returns the
    descriptor and the file's fstat.

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
            return os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_CLOEXEC), st
        except FileNotFoundError:  # no /proc: open the name again, and check it is the same inode
            fd = os.open(name, _OPEN_READ, dir_fd=folder)
            again = os.fstat(fd)
            if (again.st_ino, again.st_dev) != (st.st_ino, st.st_dev):
                os.close(fd)
                raise IsADirectoryError(errno.EISDIR, "replaced while being opened", name) from None
            return fd, again
    finally:
        os.close(handle)


def writable_by_others(folder: int, euid: int) -> bool:
    """Whether a user other than ``euid`` (root aside) may add, remove or rename names in the open
    ``folder``. An ACL that grants anyone write access shows in the group bits (its mask)."""
    st = os.fstat(folder)
    return st.st_uid != euid or bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


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


class SourceFile:
    """The file being moved: its folder's descriptor, its name there, and its lstat when found.
    (A plain class: one is made per file, and a frozen dataclass costs more to build.)"""

    __slots__ = ("folder", "name", "path", "st")

    def __init__(self, folder: int, name: str, path: str, st: os.stat_result) -> None:
        self.folder = folder
        self.name = name
        self.path = path  # for messages
        self.st = st

    def open(self) -> tuple[int, os.stat_result]:
        """Open it for reading (a descriptor and its fstat); Vanished if its name no longer holds
        a regular file, HardLinked if it has other names."""
        try:
            return open_regular(self.name, self.folder, single_link=True)
        except (FileNotFoundError, IsADirectoryError):
            raise Vanished(self.path) from None

    def still_here(self) -> bool:
        """The same file (inode) is still under its name."""
        try:
            now = lstat_at(self.name, self.folder)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (self.st.st_dev, self.st.st_ino)

    def remove(self) -> None:
        """Unlink the source once its bytes are safe elsewhere, unless its name now belongs to
        another file (a producer replaced it meanwhile: that one is new work, not this file)."""
        if self.still_here():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.folder)


def same_bytes_as(src: SourceFile, folder: int, name: str) -> bool:
    """Whether ``name`` in ``folder`` is a regular file with the source's bytes. A source with
    other names is never read, so it is never found the same."""
    try:
        fa, _ = src.open()
    except (Vanished, HardLinked):
        return False
    try:
        fb, _ = open_regular(name, folder)
    except OSError:
        os.close(fa)
        return False
    try:
        return same_bytes(fa, fb)
    finally:
        os.close(fa)
        os.close(fb)


def is_twin(src: SourceFile, folder: int, name: str) -> bool:
    """True when ``name`` in ``folder`` is this very inode: the link-then-unlink fallback of
    ``rename_noreplace`` was interrupted between its two steps. Known by identity, never guessed
    from bytes (a copy interrupted after publishing is the ledger's to finish: recovery.py)."""
    try:
        other = lstat_at(name, folder)
    except FileNotFoundError:
        return False
    return (other.st_dev, other.st_ino) == (src.st.st_dev, src.st.st_ino)


def sha256_fd(fd: int) -> bytes:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.digest()


def check_renamed(src: SourceFile, folder: int, name: str) -> str | None:
    """After a rename: if what arrived is not a regular file, the source name was swapped (for
    a symlink, a FIFO...) after it was found. Put it back; nothing behind it was touched.
    Returns why a step after the rename failed (a setuid bit that could not be cleared): the
    file stays where it arrived, never removed for it."""
    try:
        now = lstat_at(name, folder)
    except FileNotFoundError:
        return None  # taken away at once by someone else: it did arrive
    if stat.S_ISREG(now.st_mode):
        if now.st_mode & SET_ID:
            try:
                drop_set_id(folder, name, now)
            except OSError as exc:
                return f"arrived with its setuid/setgid bit, which could not be cleared: {exc.strerror}"
        return None
    try:
        rename_noreplace(folder, name, src.folder, src.name)
    except OSError as exc:
        raise MoveError(
            f"swapped for a non-file during its move; left at {name}: {exc}", transient=False
        ) from None
    raise Vanished(src.path)  # back where it was, as something the scan ignores


def drop_set_id(folder: int, name: str, st: os.stat_result) -> None:
    """A renamed file keeps its inode, mode bits included: setuid and setgid are taken off it,
    as a copy never has them. Changed through a bare handle, so no read permission is needed
    and a symlink swapped in meanwhile is not followed."""
    handle = os.open(name, _OPEN_HANDLE, dir_fd=folder)
    try:
        now = os.fstat(handle)
        if stat.S_ISREG(now.st_mode) and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.chmod(f"/proc/self/fd/{handle}", stat.S_IMODE(now.st_mode) & ~SET_ID)
    finally:
        os.close(handle)
