"""Reading a file named on a user's word (a config file, a plan, a state file): never blocking,
never without end.

A FIFO put where a config file should be would block ``open`` until a writer came; ``/dev/zero``
would be read until memory ran out; a tape device may rewind when opened. So the name is looked
at first and only a regular file is opened (``O_NONBLOCK``: a FIFO swapped in meanwhile cannot
block the open; ``O_NOCTTY``: a terminal never becomes ours), ``fstat`` on the open descriptor is
the truth, and at most ``limit`` bytes are read whatever the file claims. Threads: the caller's.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection
from enum import Enum
from pathlib import Path


class Unfit(Enum):
    """Why a file was not read: each with the errno an ``OSError`` of it carries."""

    MISSING = errno.ENOENT
    FOLDER = errno.EISDIR
    NOT_REGULAR = errno.EINVAL
    TOO_LARGE = errno.EFBIG
    NOT_TRUSTED = errno.EPERM  # owned by a user not among those trusted
    UNREADABLE = errno.EIO  # the errno of the failure itself is kept on the error


class UnfitFile(OSError):
    """A file that was not read, and why (``problem``); ``str()`` is one line naming it.

    An ``OSError``: callers that already treat an unreadable file as such go on doing so."""

    def __init__(self, path: Path | str, problem: Unfit, detail: str, code: int | None = None) -> None:
        super().__init__(code if code is not None else problem.value, detail, str(path))
        self.path = Path(path)
        self.problem = problem
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.path} {self.detail}"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _check(path: Path | str, st: os.stat_result, limit: int, owners: Collection[int] | None) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise UnfitFile(path, Unfit.FOLDER, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        detail = f"is {kind}, not a regular file" if kind.startswith("a ") else "is not a regular file"
        raise UnfitFile(path, Unfit.NOT_REGULAR, detail)
    if owners is not None and st.st_uid not in owners:
        raise UnfitFile(path, Unfit.NOT_TRUSTED, f"is owned by uid {st.st_uid}, whom it does not trust")
    if st.st_size > limit:
        raise UnfitFile(path, Unfit.TOO_LARGE, f"is {st.st_size} bytes, over the limit of {limit}")


def read_regular(
    path: Path | str, limit: int, *, follow: bool = True, owners: Collection[int] | None = None
) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), or ``UnfitFile`` saying why not.
    ``follow=False``: a symbolic link is not followed (it is not a regular file); ``owners``:
    the file must belong to one of these uids."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        # A device is not even opened (some act on open).
        _check(path, os.stat(path, follow_symlinks=follow), limit, owners)
        fd = os.open(path, flags)
    except UnfitFile:
        raise
    except FileNotFoundError:
        raise UnfitFile(path, Unfit.MISSING, "does not exist") from None
    except OSError as exc:
        raise UnfitFile(path, Unfit.UNREADABLE, f"cannot be read: {exc.strerror or exc}", exc.errno) from None
    try:
        _check(path, os.fstat(fd), limit, owners)  # what was opened, whatever the name holds now
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise UnfitFile(path, Unfit.TOO_LARGE, f"is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except UnfitFile:
        raise
    except OSError as exc:
        raise UnfitFile(path, Unfit.UNREADABLE, f"cannot be read: {exc.strerror or exc}", exc.errno) from None
    finally:
        os.close(fd)
