"""What can go wrong, and how each is handled.

``ReorgError`` is the base of every error a user sees: each subclass says its exit code, and the
command line turns any of them into one line on stderr and that code. The other exceptions here
are the engine's internal outcomes of a move: caught inside the engine, never shown as errors.
"""

from __future__ import annotations

import errno
from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Exit codes, documented in the README and in --help."""

    OK = 0
    LEFT_BEHIND = 1  # --once: some files were quarantined or could not be moved (bench: one did not arrive)
    USAGE = 2  # bad flags, environment, config file or folders
    ALREADY_RUNNING = 3  # another instance holds the source
    NOT_FOUND = 4  # quarantine: no such item; history: no ledger
    INTERNAL = 70  # a bug: please report it
    INTERRUPTED = 130


class ReorgError(Exception):
    """A failure the user is told about: one line on stderr and ``exit_code``. Unless a subclass
    says otherwise, a mistake in what the user asked for (exit code 2)."""

    exit_code: ClassVar[ExitCode] = ExitCode.USAGE


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
# No descriptor free (this process's open-file limit, or the system's): the file waits until
# some are closed, without using up its retries; it is never quarantined (or left) for this.
NO_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


class MoveError(Exception):
    """Engine-internal outcome: a move failed; ``transient`` says whether to retry it."""

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


class Unsafe(MoveError):
    """Engine-internal outcome: a file this daemon cannot make safe to deliver (a setuid file it
    may not clear). Nothing moves; it stays in the source, with this reason, until it changes."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False, code=errno.EPERM)


class Vanished(Exception):
    """Engine-internal outcome: the source disappeared before it could be moved, or its name now
    holds something that is not a regular file (as the scan would ignore it): not an error,
    nothing to move."""


class Changed(Exception):
    """Engine-internal outcome: the source changed after it was found ready (a writer is still at
    it): nothing was published, and it should settle again rather than use up a retry."""


class Abandoned(Exception):
    """Engine-internal outcome: a stop was asked for during a copy; the source is untouched."""


class Conflict(Exception):
    """Engine-internal outcome: the destination name is taken and the policy says quarantine."""

    def __init__(self, existing: str) -> None:
        super().__init__(f"name collision: {existing} already exists")
        self.existing = existing


class HardLinked(Exception):
    """Engine-internal outcome: a file with more than one name, whose bytes are not read (another
    name would keep them)."""

    def __init__(self, links: int) -> None:
        super().__init__(f"has {links} hard links; not read or copied while another name holds it")
        self.links = links
