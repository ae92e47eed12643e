"""The batch runner: moves the files of one batch, one after another, and says what became of
each (one ``FileResult`` per file, in a ``BatchResult``). It changes no shared state of its own:
failures go to ``Failures`` (retry, quarantine), a skipped file to intake's skip memory, events
to the bus (held by the caller for the whole batch); the engine applies the result in one place.

Threads: whichever thread a batch runs on (see lanes.py): the scanner, the coordinator or a pool
worker. ``RenameLane`` holds source folders open for the length of one batch, in that thread.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from dataclasses import dataclass, field

from reorg_tui.engine import events as ev
from reorg_tui.engine.bus import EVENT_HOLD, EventBus
from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.errors import Abandoned, Changed, Conflict, MoveError, Unsafe, Vanished
from reorg_tui.engine.failures import COLLISION, INVALID_DATE, Failures, reason_label
from reorg_tui.engine.intake import Intake
from reorg_tui.engine.journal import RenameJournal
from reorg_tui.engine.kinds import ARRIVED, FileResult, Kind, Ready
from reorg_tui.engine.ledger import TransferKind, path_blob
from reorg_tui.engine.metrics import Metrics
from reorg_tui.engine.move import Journal, Mover
from reorg_tui.engine.naming import InvalidDate, Naming
from reorg_tui.engine.plan import plan
from reorg_tui.engine.rename_lane import RenameLane
from reorg_tui.engine.settings import EngineSettings

# Read once: a member looked up on its Enum class is a Python-level lookup, and this is per file.
MOVED, SKIPPED, DUPLICATES = Kind.MOVED, Kind.SKIPPED, (Kind.TWIN, Kind.DEDUPED)
_new = tuple.__new__  # a FileResult made without NamedTuple's Python-level __new__ (one a file)


@dataclass
class Tally:
    """A batch's results summed up, as metrics, intake and lanes want them."""

    moved: int = 0
    nbytes: int = 0
    copies: int = 0
    attempts: int = 0  # files handled: arrived, skipped, failed or quarantined (a wait is none)
    waits: int = 0  # no room at the destination: they wait for the disk
    durations: list[float] = field(default_factory=list)  # of each file that arrived
    reasons: list[str] = field(default_factory=list)  # of each file that failed or was quarantined
    changed: list[str] = field(default_factory=list)  # written to during the copy: settle again
    renamed: set[str] = field(default_factory=set)  # destination folders renamed into
    first_at: float | None = None  # when the first and the last file of the batch arrived
    last_at: float | None = None


@dataclass
class BatchResult:
    batch: list[Ready]  # every file handed in, tried or not (a stop leaves the rest untouched)
    files: list[FileResult] = field(default_factory=list)  # the ones tried, in order
    attempted: int = 0  # tried, counting one whose move ended in an unexpected error

    def tally(self) -> Tally:
        t = Tally()
        skipped = 0
        for file in self.files:
            kind = file.kind
            if kind in ARRIVED:
                if t.first_at is None:
                    t.first_at = file.at
                t.last_at = file.at
                t.moved += 1
                t.nbytes += file.size
                t.durations.append(file.seconds)
                if file.folder is not None:
                    t.renamed.add(file.folder)
                elif kind is Kind.COPIED:
                    t.copies += 1
            elif kind is Kind.FAILED or kind is Kind.QUARANTINED:
                t.reasons.append(file.reason or "other")
            elif kind is Kind.SKIPPED:
                skipped += 1
            elif kind is Kind.WAITING:
                t.waits += 1
            elif kind is Kind.CHANGED:
                t.changed.append(file.rel)
        # A file whose move ended in an unexpected error (it ended the batch) failed too.
        t.reasons.extend(["other"] * (self.attempted - len(self.files)))
        t.attempts = t.moved + skipped + len(t.reasons)
        return t


class BatchRunner:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        naming: Naming,
        sources: Tree,
        mover: Mover,
        intake: Intake,
        failures: Failures,
        metrics: Metrics,
        bus: EventBus,
        abandon: threading.Event,
        journal: RenameJournal,
        held: int = RenameLane.HELD,
    ) -> None:
        self.settings = settings
        self.source = str(settings.source)
        self.dest = str(settings.dest)
        self.naming = naming
        self.sources = sources
        self.mover = mover
        self.intake = intake
        self.failures = failures
        self.metrics = metrics
        self.bus = bus
        self.abandon = abandon
        self.journal = journal  # writes the batches' renames to the ledger (journal.py)
        self._batches = itertools.count(1)
        self.held = held  # source folders a batch keeps lent (the descriptor budget's share)

    def run(self, batch: list[Ready], result: BatchResult) -> None:
        """Move the batch's files into ``result`` (given, not returned: a batch cut short by an
        unexpected error still reports what it did). The caller holds the bus's events; a slow
        batch hands them over every EVENT_HOLD seconds. Its renames are written to the ledger
        at the end, in one transaction (a rename happened or did not: it needs no intent)."""
        lane = RenameLane(self.mover, self.sources, held=self.held)
        files, handed = result.files, time.perf_counter()
        ledger = self.mover.ledger
        journal = Journal(batch=self.batch_id(), renames=[])
        try:
            for rel, st in batch:
                if self.abandon.is_set():
                    break  # the rest stay in the source, untouched, for the next run
                started = time.perf_counter()
                if started - handed >= EVENT_HOLD:
                    handed = started
                    self.bus.hand_over()
                result.attempted += 1
                files.append(self.move_one(rel, started, st, lane, journal))
        finally:
            lane.close()
            if ledger is not None and journal.renames:
                self.journal.add(TransferKind.DELIVER, journal.batch, journal.renames)

    def batch_id(self) -> str:
        """A name for the next batch, unique across runs: history shows it, undo takes it."""
        ledger = self.mover.ledger
        token = ledger.owner.rpartition(":")[2] if ledger is not None else "run"
        return f"{token}.{next(self._batches)}"

    def move_one(
        self,
        rel: str,
        started: float,
        st: os.stat_result | None = None,
        lane: RenameLane | None = None,
        journal: Journal | None = None,
    ) -> FileResult:
        src = f"{self.source}/{rel}"
        try:
            folder, name, intended = plan(self.naming, self.dest, rel)
        except InvalidDate as exc:
            try:
                self.failures.quarantine(rel, src, str(exc), None, attempts=0)
            except Unsafe as unsafe:
                return self._left_unsafe(rel, src, unsafe)
            return FileResult(rel, Kind.QUARANTINED, reason=INVALID_DATE)
        renames = journal.renames if journal is not None else None
        try:
            if lane is not None and st is not None and lane.move(rel, folder, name, st):
                if renames is not None:
                    renames.append(
                        (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                         path_blob(src), path_blob(intended), time.time())
                    )  # fmt: skip
                return self._arrived(rel, src, MOVED, intended, st.st_size, folder, started)
            if rel in self.failures:  # a retry: its attempts and errors go into its ledger row
                journal = Journal(
                    batch=journal.batch if journal else "",
                    attempts=self.failures.attempts(rel) + 1,
                    errors=self.failures.errors(rel),
                    renames=renames,
                )
            outcome = self.mover.move(self.sources, rel, folder, name, self.settings.on_conflict, st, journal)
        except Unsafe as exc:
            return self._left_unsafe(rel, src, exc)
        except Vanished:
            self.failures.forget(rel)
            self.metrics.add(vanished=1)
            self.bus.emit(ev.Vanished(src))
            return FileResult(rel, Kind.VANISHED)
        except Abandoned:
            return FileResult(rel, Kind.ABANDONED)
        except Changed:
            self.failures.forget(rel)
            self.bus.warn(f"{src} changed during its copy; it moves once it holds still again")
            return FileResult(rel, Kind.CHANGED)
        except Conflict as exc:
            try:
                self.failures.quarantine(
                    rel, src, str(exc), exc.existing, attempts=self.failures.attempts(rel)
                )
            except Unsafe as unsafe:
                return self._left_unsafe(rel, src, unsafe)
            return FileResult(rel, Kind.QUARANTINED, reason=COLLISION)
        except MoveError as exc:
            try:
                kind = self.failures.failed(rel, src, exc, intended)
            except Unsafe as unsafe:
                return self._left_unsafe(rel, src, unsafe)
            return FileResult(rel, kind, reason=reason_label(exc))
        except OSError as exc:
            error = MoveError.from_os(exc, "move")
            return FileResult(
                rel, self.failures.failed(rel, src, error, intended), reason=reason_label(error)
            )
        if outcome.kind is SKIPPED:
            self.failures.forget(rel)
            try:
                self.intake.skip(rel, os.lstat(src))
            except OSError:
                pass
            self.metrics.add(skipped=1)
            self.bus.emit(ev.Skipped(src, outcome.path))
            return FileResult(rel, Kind.SKIPPED)
        if outcome.kind in DUPLICATES:
            self.metrics.add(duplicates=1)
        if outcome.renamed:  # a collision (rare; the rename lane never makes one): counted at once
            self.metrics.add(renamed=1)
        if outcome.warning:
            self.bus.warn(f"{outcome.path}: {outcome.warning}")
        return self._arrived(
            rel, src, outcome.kind, outcome.path, outcome.size, outcome.folder, started, outcome.renamed
        )

    def _left_unsafe(self, rel: str, src: str, exc: Unsafe) -> FileResult:
        """A file that may not be moved as it is: left in the source, not tried again until it
        changes (its owner clears the bit: its ctime moves)."""
        self.failures.forget(rel)
        with contextlib.suppress(OSError):
            self.intake.skip(rel, os.lstat(src))
        self.failures.left(f"{src}: {exc}")
        self.bus.emit(ev.Failed(src, str(exc)))
        return FileResult(rel, Kind.FAILED, reason=reason_label(exc))

    def _arrived(
        self,
        rel: str,
        src: str,
        kind: Kind,
        path: str,
        size: int,
        folder: str,
        started: float,
        renamed: bool = False,
    ) -> FileResult:
        """The file is at ``path`` (below ``folder``; ``renamed``: under a collision name, its own
        being taken): no retry is kept for it; it is told."""
        self.failures.forget(rel)
        seconds = time.perf_counter() - started
        moved = ev.Moved(src, path, size, seconds, kind, renamed)
        self.bus.emit(moved)
        synced = folder if kind is MOVED else None  # a rename: its folder is fsynced later
        return _new(FileResult, (rel, kind, size, seconds, synced, None, moved.at))


class FolderSync:
    """Destination folders with renames not yet fsynced. Renames are atomic without this; it makes
    reported moves durable about once a second, one fsync per folder touched since, however many
    files moved into it. Batch threads add (under its lock); the housekeeper syncs."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._lock = threading.Lock()
        self._folders: set[str] = set()

    def add(self, folders: set[str]) -> None:
        if folders:
            with self._lock:
                self._folders.update(folders)

    def sync(self) -> None:
        with self._lock:
            folders, self._folders = self._folders, set()
        for folder in folders:
            with contextlib.suppress(OSError):
                self.tree.sync(folder)
