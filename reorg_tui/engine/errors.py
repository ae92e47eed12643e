"""What can go wrong with a move, and how each is handled."""

from __future__ import annotations

import errno

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


class HardLinked(Exception):
    """A file with more than one name: its bytes are not read (another name would keep them)."""

    def __init__(self, links: int) -> None:
        super().__init__(f"has {links} hard links; not read or copied while another name holds it")
        self.links = links
