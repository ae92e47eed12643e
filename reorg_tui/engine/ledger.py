"""The ledger: a durable record of every transfer this daemon started and finished.

Every transfer (deliver, quarantine, release, undo) is one row: the file's identity, where it
came from and went, its kind, how far it got, when, its attempts and errors, and which instance
owns it. A copy writes its intent before any byte moves and each step after it; a rename, which
happened or did not, is written after the fact, a batch at a time. Recovery after a crash reads
the open rows (see recovery.py) and finishes or withdraws each: it knows what this daemon started
instead of guessing from bytes. History and undo read the finished rows.

It also holds two indexes that a restart must find again: the retry queue (retry.py keeps it in
memory and writes what changed, a transaction a save) and the quarantine's index (quarantine.py:
the ``<id>.json`` record beside each item is the truth, written first; the index answers
``list``, ``get`` and the counts without reading a record, and is rebuilt from the records where
it is lost). Quarantine rows are keyed by the quarantine's folder as well as the item's id, so a
state folder whose daemon was given another ``--quarantine`` never mixes the two.

The interface (``Ledger``) is what the engine and the faces use; ``SqliteLedger``
(ledger_sqlite.py) is the embedded backend, in the state folder. Nothing above the backend
assumes SQLite: rows carry an owner and a lease, so that a backend shared by several hosts can
hand a row to one instance at a time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple, Protocol

from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.records import QuarantineStats, Record, RetryEntry


class LedgerError(ReorgError):
    """The ledger cannot be used: from a newer version, unreadable, or not a ledger."""

    exit_code = ExitCode.USAGE


class LedgerUnreadable(LedgerError):
    """The ledger's file is not a database this version can read (garbage, truncated)."""


class NoLedger(LedgerError):
    """There is no ledger to read (nothing recorded yet, or another state folder): exit 4."""

    exit_code = ExitCode.NOT_FOUND


class LedgerWriteError(Exception):
    """A write to the ledger failed (its disk is full, an I/O error): what it was to record is
    not recorded. Engine-internal: a move that has happened stays done (recovery can tell from
    the disk), and one that has not begun does not begin."""


class TransferKind(StrEnum):
    DELIVER = "deliver"  # source -> destination tree
    QUARANTINE = "quarantine"  # source -> quarantine
    RELEASE = "release"  # quarantine -> source
    UNDO = "undo"  # destination -> source (or, undoing an undo, source -> destination)


class Step(StrEnum):
    """How far a transfer got. A rename is written once, at DONE."""

    INTENT = "intent"  # about to copy: the staging file exists (empty or partial)
    STAGED = "staged"  # the copy is whole and durable in staging; not yet published
    PUBLISHED = "published"  # the copy is at its target name; the source is still to be removed
    DONE = "done"  # the file is at its target alone
    WITHDRAWN = "withdrawn"  # nothing was published: the file is where it was

    @property
    def open(self) -> bool:
        return self in (Step.INTENT, Step.STAGED, Step.PUBLISHED)


OPEN_STEPS = (Step.INTENT, Step.STAGED, Step.PUBLISHED)


class Identity(NamedTuple):
    """A file as the kernel knows it: the same inode, unchanged. ctime moves on every write and
    every change of metadata, and no writer can set it back."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def differs(self, st: os.stat_result) -> list[str]:
        """The fields ``st`` has otherwise, named as ``os.stat_result`` names them (none: the same
        file, unchanged)."""
        return [f"st_{name}" for name, value in self._asdict().items() if getattr(st, f"st_{name}") != value]

    def matches(self, st: os.stat_result) -> bool:
        return (
            self.ino == st.st_ino
            and self.dev == st.st_dev
            and self.size == st.st_size
            and self.mtime_ns == st.st_mtime_ns
            and self.ctime_ns == st.st_ctime_ns
        )


@dataclass
class Transfer:
    """One row of the ledger. Paths are absolute, as bytes (any name a filesystem holds)."""

    kind: TransferKind
    step: Step
    identity: Identity
    source: bytes
    target: bytes  # where it is meant to go; once published, where it went
    started: float
    finished: float | None = None
    staging: bytes | None = None  # a copy's staging file, while it has one
    copy_ino: int | None = None  # the staging file's inode (the copy keeps it when published)
    batch: str = ""  # what the transfer was part of: a batch of the daemon, an undo, an apply
    attempts: int = 1
    errors: list[str] = field(default_factory=list)
    undoes: int | None = None  # an undo: the id of the transfer it reverses
    owner: str = ""
    lease: float | None = None  # a shared backend: the owner's claim ends then (None: no lease)
    id: int | None = None  # given by the ledger when the row is written

    @property
    def source_path(self) -> str:
        return os.fsdecode(self.source)

    @property
    def target_path(self) -> str:
        return os.fsdecode(self.target)


@dataclass(frozen=True)
class Query:
    """Which finished rows to read (history, undo): all of them given, none narrows."""

    name: str | None = None  # a glob matched against the source's and the target's file name
    since: float | None = None  # started at or after (wall clock)
    batch: str | None = None
    kinds: tuple[TransferKind, ...] = ()
    paths: tuple[bytes, ...] = ()  # a source or target path exactly
    done_only: bool = False
    limit: int = 10_000


RenameRow = tuple[int, int, int, int, int, bytes | bytearray, bytes | bytearray, float]
"""A rename as ``Ledger.record_renames`` takes it: the identity's five fields, the source and
target paths (``path_blob``), and when. A plain tuple: one is made per file moved."""


def path_blob(path: str) -> bytearray:
    """A path's bytes as a rename row holds them. A bytearray, not bytes: sqlite3 binds a
    bytearray as a blob directly, but looks for an adapter for bytes first and raises (and
    swallows) an AttributeError doing so; for the two paths of every rename that was a third of
    what writing its row cost (1.7 against 2.5 us a row, 256-row statements)."""
    return bytearray(path, _FS_ENCODING, "surrogateescape")


_FS_ENCODING = sys.getfilesystemencoding()


class Ledger(Protocol):
    """What the engine and the faces need of a ledger. Every method is thread-safe."""

    owner: str  # this instance: rows it writes carry it

    def record(self, rows: list[Transfer]) -> None:
        """Write finished transfers (renames) after the fact: one transaction for all."""

    def record_renames(self, kind: TransferKind, batch: str, rows: list[RenameRow]) -> None:
        """Write finished renames of one batch after the fact, with the fewest values a row: the
        hot path's ``record``."""

    def begin(self, row: Transfer) -> int:
        """Write a transfer's intent durably, before its copy begins; returns its id."""

    def advance(
        self,
        row_id: int,
        step: Step,
        *,
        target: bytes | None = None,
        error: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Move a row on to ``step`` (setting its target, adding an error) where ``owner`` (by
        default this instance) still owns it; False where it does not (a fence)."""

    def open_rows(self) -> list[Transfer]:
        """Every transfer not done or withdrawn, oldest first: what recovery reads."""

    def claim(self, row_id: int, *, lease_seconds: float | None = None) -> bool:
        """Make this instance the owner of an open row whose owner is gone; False if another
        instance owns it and is alive."""

    def query(self, query: Query) -> list[Transfer]:
        """Rows as history and undo read them, newest first."""

    def get(self, row_id: int) -> Transfer | None: ...

    # ---- the retry queue -----------------------------------------------------------------------

    def save_retries(self, changed: list[RetryEntry], removed: list[str]) -> None:
        """Write the entries that changed (added or updated) and remove those forgotten, in one
        transaction. An entry's ``next_try`` of None (in flight) is kept as None: due at once."""

    def load_retries(self) -> tuple[list[RetryEntry], list[str]]:
        """Every entry saved, and a line for each row that was not what this version writes (a
        ledger edited by hand): such rows are set aside (kept for the operator, out of the
        queue), never acted on."""

    # ---- the quarantine's index ----------------------------------------------------------------

    def quarantine_add(self, root: str, records: list[Record]) -> None:
        """Index records of the quarantine at ``root`` (added, or replaced by id): one transaction.
        Marks ``root`` as indexed even when ``records`` is empty."""

    def quarantine_drop(self, root: str, ids: list[str]) -> None:
        """Forget items (unknown ids are ignored): one transaction."""

    def quarantine_list(
        self, root: str, *, limit: int | None = None, offset: int = 0, errors: bool = True
    ) -> list[Record]:
        """Indexed items, oldest first (then by id); ``limit`` None: all of them. ``errors``
        False leaves each error history empty (a listing that does not show them reads less)."""

    def quarantine_get(self, root: str, item_id: str) -> Record | None: ...

    def quarantine_ids(self, root: str) -> set[str]:
        """Every indexed id: what ``repair`` reconciles the folder against."""

    def quarantine_stats(self, root: str) -> QuarantineStats:
        """Count, bytes and the oldest time, kept by the backend as items come and go: the cost
        does not grow with the quarantine (the daemon asks after every scan)."""

    def quarantine_seen(self, root: str) -> int | None:
        """The quarantine folder's mtime (ns) when its index last matched its listing, as the
        last process to look recorded it; None: not known, list it."""

    def quarantine_saw(self, root: str, mtime_ns: int | None) -> None: ...

    def quarantine_indexed(self, root: str) -> bool:
        """Whether this ledger indexes the quarantine at ``root`` (a daemon's repair has run on it)."""

    def prune(self, before: float, *, limit: int = 10_000) -> int:
        """Forget up to ``limit`` finished transfers that finished before ``before``."""

    def close(self) -> None: ...


def new_owner() -> str:
    """This instance's name in the rows it owns: host, pid, the process's start time (so that a
    pid reused by another process is not taken for it) and a token unique to this run."""
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """Whether the instance that owns a row may still be at work on it: a process of this host
    with that pid, started at that time. The embedded ledger lives in one host's state folder and
    is used only under the source's lock, so an owner named by another host (a container
    recreated with a new hostname on the same volume) is gone; a backend that several hosts share
    decides by leases instead (see ``Ledger.claim``)."""
    host, _, rest = owner.partition(":")
    pid, _, rest = rest.partition(":")
    started, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return _started(int(pid)) == started


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc), or "" if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return ""


LEDGER_NAME = "ledger.sqlite3"


def open_ledger(
    state_dir: Path, *, owner: str | None = None, create: bool = True, read_only: bool = False
) -> Ledger:
    """The ledger in ``state_dir`` (the embedded backend). LedgerError if it cannot be used;
    NoLedger if there is none and ``create`` is False. ``read_only``: to look at it (history),
    never creating, migrating or writing it, nor any file beside it."""
    from reorg_tui.engine.ledger_sqlite import SqliteLedger

    if read_only:
        return SqliteLedger.read_only(state_dir / LEDGER_NAME, owner=owner or "")
    return SqliteLedger(state_dir / LEDGER_NAME, owner=owner or new_owner(), create=create)


def memory_ledger() -> Ledger:
    """A ledger that lasts as long as this process, in memory: the index of a quarantine store
    that no state folder's ledger indexes (see quarantine.py)."""
    from reorg_tui.engine.ledger_sqlite import SqliteLedger

    return SqliteLedger(Path(":memory:"), owner=new_owner())


def open_for_daemon(state_dir: Path) -> tuple[Ledger, str | None]:
    """The ledger a daemon journals to, and a warning if one had to be set aside: a file that is
    not a database at all holds nothing recovery could use, so it is kept aside (for whoever wants
    to look at it) and a new ledger started, rather than the daemon refusing to start for ever
    under its supervisor. A ledger of a newer version is still refused (LedgerError): it is
    readable, by that version."""
    path = state_dir / LEDGER_NAME
    try:
        return open_ledger(state_dir), None
    except LedgerUnreadable as exc:
        aside = path.with_name(f"{LEDGER_NAME}.unreadable-{int(time.time())}")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        cause = str(exc).partition(" (")[2].partition(")")[0] or "unreadable"
        return open_ledger(state_dir), (
            f"the ledger {path} is not a database ({cause}): set aside as {aside}; a new one was started"
        )
