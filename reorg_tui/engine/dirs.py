"""Folder trees reached only through directory descriptors.

Every folder below a configured root is opened one component at a time, relative to its parent's
descriptor, with ``O_NOFOLLOW``: a symlink planted anywhere below the root (a destination date
folder pointing at ``/etc``, a source subfolder swapped for a link) is refused, never followed.
Files are then named relative to those descriptors (``renameat2``, ``openat``, ``unlinkat``), so
no path string is resolved again between a check and the operation it guards.

Only the root itself is opened by path: it is what the operator configured.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class NotAFolder(OSError):
    """A path component below the root is a symlink or a file where a folder should be."""


class NotMounted(OSError):
    """The root was a mount point and is not one now: the folder underneath is no place for files."""


def open_below(parent: int, rel: str, *, create: bool = False) -> int:
    """Open folder ``rel`` (components separated by "/") below the folder open as ``parent``,
    without following a symlink at any step. Returns a new descriptor the caller closes.
    With ``create``, missing folders are made (mode 0777 less the umask)."""
    if not rel:
        return os.dup(parent)
    fd = parent
    try:
        for part in rel.split("/"):
            child = open_child(fd, part, rel, create=create)
            if fd != parent:
                os.close(fd)
            fd = child
        return fd
    except BaseException:
        if fd != parent:
            os.close(fd)
        raise


def open_child(
    parent: int, part: str, rel: str, *, create: bool = False, made: Callable[[], None] | None = None
) -> int:
    """Open the folder ``part`` right below ``parent`` (no-follow; made if missing and
    ``create``, and then ``made`` is called). ``rel`` names the whole path, for messages."""
    if part in ("", ".", "..") or "/" in part:
        raise NotAFolder(errno.EINVAL, f"bad folder name {part!r} in {rel!r}")
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(part, 0o777, dir_fd=parent)
        except FileExistsError:  # made by another thread meanwhile
            pass
        else:
            if made is not None:
                made()
        return open_child(parent, part, rel)  # made now: opened (or refused) like any other
    except OSError as exc:
        raise _refused(exc, parent, part, rel) from None


def _refused(exc: OSError, parent: int, part: str, rel: str) -> OSError:
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return exc
    try:
        what = (
            "a symlink"
            if stat.S_ISLNK(os.stat(part, dir_fd=parent, follow_symlinks=False).st_mode)
            else "a file"
        )
    except OSError:
        what = "not a folder"
    return NotAFolder(exc.errno, f"{part!r} in {rel!r} is {what}, not a folder: refused, not followed")


def raise_open_file_limit(wanted: int = 65536) -> int:
    """Raise this process's soft limit on open files towards the hard limit (as a daemon that
    caches folder descriptors should: the default soft limit is often 1024). Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


class Tree:
    """A root folder and a bounded cache of descriptors for folders below it.

    ``folder(rel)`` lends a descriptor for the length of a ``with`` block; a descriptor is closed
    only when the cache has dropped it and no one is using it, so a number is never reused under
    a thread that still holds it.
    """

    def __init__(
        self,
        root: str,
        *,
        capacity: int = 256,
        create_root: bool = True,
        made: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.made = made  # called for each folder this tree makes (each takes an inode)
        self.capacity = capacity
        self.create_root = create_root
        self._lock = threading.Lock()
        self._root_fd: int | None = None
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._users: dict[int, int] = {}
        self._dropped: set[int] = set()
        # A root that is a mount point must stay one: after an unmount, writing into the bare
        # folder underneath would hide files from everyone once the filesystem is back.
        self.mount_point = os.path.ismount(root)

    def _lend_root(self) -> int:
        """The root's descriptor, lent like any other (opened, and made if missing, on first use)."""
        with self._lock:
            if self._root_fd is None:
                if self.mount_point and not os.path.ismount(self.root):
                    raise NotMounted(errno.ENODEV, f"{self.root} is not mounted")
                if self.create_root:
                    os.makedirs(self.root, exist_ok=True)
                self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fd = self._root_fd
            self._users[fd] = self._users.get(fd, 0) + 1
            return fd

    @contextlib.contextmanager
    def folder(self, rel: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor for ``rel`` below the root ("" is the root itself)."""
        fd = self.lend(rel, create)
        try:
            yield fd
        finally:
            self.give_back(fd)

    def knows(self, rel: str) -> bool:
        """Whether ``rel`` is open in the cache now (so it exists: lending it makes nothing)."""
        return rel in self._fds

    def lend(self, rel: str, create: bool = False) -> int:
        """A descriptor for ``rel``; hand it back with ``give_back`` (``folder`` does both).

        A folder not in the cache is opened below its parent, itself lent from the cache: a
        miss costs one ``openat``, not a walk from the root."""
        with self._lock:
            fd = self._fds.get(rel)
            if fd is not None:
                self._fds.move_to_end(rel)
                self._users[fd] = self._users.get(fd, 0) + 1
                return fd
        if rel.startswith("/"):
            raise NotAFolder(errno.EINVAL, f"bad folder name in {rel!r}")
        head, _, part = rel.rpartition("/")
        parent = self.lend(head, create) if head else self._lend_root()
        try:
            fd = open_child(parent, part, rel, create=create, made=self.made) if rel else os.dup(parent)
        finally:
            self.give_back(parent)
        with self._lock:
            known = self._fds.get(rel)
            if known is not None:  # another thread opened it first: use that one
                os.close(fd)
                fd = known
            else:
                self._fds[rel] = fd
                self._evict()
            self._users[fd] = self._users.get(fd, 0) + 1
            return fd

    def give_back(self, fd: int) -> None:
        with self._lock:
            left = self._users[fd] - 1
            if left:
                self._users[fd] = left
                return
            del self._users[fd]
            if fd in self._dropped:
                self._dropped.discard(fd)
                os.close(fd)

    def _evict(self) -> None:
        """Lock held: drop the oldest entries beyond capacity."""
        while len(self._fds) > self.capacity:
            _, fd = self._fds.popitem(last=False)
            self._drop(fd)

    def _drop(self, fd: int) -> None:
        if fd in self._users:
            self._dropped.add(fd)
        else:
            os.close(fd)

    def forget(self) -> None:
        """Drop every cached descriptor, the root's included: after a folder was removed or
        replaced behind our back, the next use opens it afresh."""
        with self._lock:
            for fd in self._fds.values():
                self._drop(fd)
            self._fds.clear()
            if self._root_fd is not None:
                self._drop(self._root_fd)
                self._root_fd = None

    def path(self, rel: str, name: str = "") -> str:
        """The path string of ``rel/name``, for messages and records only."""
        if rel and name:
            return f"{self.root}/{rel}/{name}"
        if rel or name:
            return f"{self.root}/{rel or name}"
        return self.root

    def sync(self, rel: str) -> None:
        """fsync the folder ``rel``: makes the renames into it durable."""
        with self.folder(rel) as fd:
            os.fsync(fd)

    def close(self) -> None:
        self.forget()
