"""Carrying out a plan file (``reorg-tui apply FILE``): each entry moved to exactly its planned
target through the move protocol (``Mover.move``), or refused with its reason. Nothing is
overwritten and no collision name is made: a target name that is taken refuses the entry.

An entry moves only if its source name still holds the very file that was planned: an lstat
through the source ``Tree`` (no link followed, on the way or at the end) must show the planned
identity whole (device, inode, size, mtime and ctime). An entry planned for the quarantine (its
date does not exist) is refused too: apply moves files to their targets and nowhere else.

The source's single-instance lock is held for the whole run (``AlreadyRunning``: exit code 3), so
a daemon never races it over the same files; a dry run checks each entry the same way, moves
nothing and takes no lock. Threads: the caller's only, one entry at a time, in the plan's order;
``stop`` (set from a signal handler) ends the run between entries, or a copy at its next chunk.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from reorg_tui.engine.dirs import NotAFolder, Tree
from reorg_tui.engine.errors import Abandoned, Changed, MoveError, Vanished
from reorg_tui.engine.fileops import lstat_at
from reorg_tui.engine.kinds import Kind
from reorg_tui.engine.ledger import Ledger, open_ledger
from reorg_tui.engine.lock import SourceLock
from reorg_tui.engine.move import Journal, Mover
from reorg_tui.engine.planfile import Entry, Plan, PlanError


class Refusal(StrEnum):
    """Why an entry was not carried out (its file, if there is one, stays where it is)."""

    QUARANTINE = "planned for the quarantine"  # an invalid date: apply leaves it in the source
    GONE = "no longer in the source"
    CHANGED = "changed since planning"
    TAKEN = "target name taken"
    FAILED = "could not be moved"
    STOPPED = "not tried (stopped)"


class EntryResult(NamedTuple):
    entry: Entry
    source: str  # the whole paths, for messages
    target: str  # "" for an entry planned for the quarantine
    kind: Kind | None  # how it arrived (MOVED, COPIED, TWIN); None: refused, or a dry run's "would"
    refusal: Refusal | None = None
    detail: str = ""  # what exactly: which fields changed, the existing file, the error

    @property
    def done(self) -> bool:
        """Carried out (or, in a dry run, would be)."""
        return self.refusal is None


Report = Callable[[EntryResult], None]


def apply_plan(
    plan: Plan,
    state_dir: Path,
    report: Report,
    *,
    dry_run: bool = False,
    verify: bool = False,
    stop: threading.Event | None = None,
) -> None:
    """Carry out ``plan``, calling ``report`` once per entry, in order. Raises PlanError (its
    source or destination is not a folder now) or AlreadyRunning before touching anything."""
    for label, root in (("source", plan.source), ("destination", plan.dest)):
        if not os.path.isdir(root):
            raise PlanError(f"the plan's {label} {root} is not a folder (any more)")
    lock = SourceLock(Path(plan.source), state_dir)
    made = _missing(state_dir)  # the lock's record makes them: taken away again after
    ledger = None
    if not dry_run:
        lock.acquire()
    try:
        if not dry_run:  # journaled like the daemon's moves: history shows them, undo reverts them
            ledger = open_ledger(state_dir)
        Applier(plan, verify=verify, stop=stop, ledger=ledger).run(report, dry_run=dry_run)
    finally:
        if ledger is not None:
            ledger.close()
        lock.release()
        for folder in made:
            with contextlib.suppress(OSError):  # not empty: someone else's now
                folder.rmdir()


def _missing(path: Path) -> list[Path]:
    """The folders on the way to ``path`` (itself included) that do not exist, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


class Applier:
    def __init__(
        self,
        plan: Plan,
        *,
        verify: bool = False,
        stop: threading.Event | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.plan = plan
        self.stop = stop or threading.Event()
        self.sources = Tree(plan.source, create_root=False)
        self.dests = Tree(plan.dest, create_root=False)
        self.mover = Mover(self.dests, verify=verify, stop=self.stop, ledger=ledger)
        token = ledger.owner.rpartition(":")[2] if ledger is not None else ""
        self.journal = Journal(batch=f"apply-{token}")
        self._renamed: set[str] = set()  # destination folders renamed into: fsynced at the end

    def run(self, report: Report, *, dry_run: bool = False) -> None:
        try:
            for entry in self.plan.entries:
                if self.stop.is_set():
                    report(self._refused(entry, Refusal.STOPPED))
                else:
                    report(self._one(entry, dry_run))
        finally:
            for folder in self._renamed:  # a reported move is durable
                with contextlib.suppress(OSError):
                    self.dests.sync(folder)
            self.sources.close()
            self.dests.close()

    def _one(self, entry: Entry, dry_run: bool) -> EntryResult:
        if entry.folder is None or entry.name is None:
            return self._refused(entry, Refusal.QUARANTINE, entry.problem or "")
        try:
            st = self._lstat(entry.rel)
        except (FileNotFoundError, NotAFolder) as exc:
            detail = exc.strerror if isinstance(exc, NotAFolder) else ""
            return self._refused(entry, Refusal.GONE, detail or "")
        except OSError as exc:
            return self._refused(entry, Refusal.FAILED, str(MoveError.from_os(exc, "look at it")))
        if not stat.S_ISREG(st.st_mode):
            return self._refused(entry, Refusal.GONE, "its name holds something else than a regular file")
        changed = entry.identity.differs(st)
        if changed:
            return self._refused(entry, Refusal.CHANGED, f"{', '.join(changed)} differ")
        # Looked at first, so that a taken name refuses the entry whatever the file there is
        # (the mover's "skip" would too, but after making a copy across filesystems).
        if self._taken(entry.folder, entry.name):
            return self._refused(entry, Refusal.TAKEN, f"{self._target(entry)} exists")
        if dry_run:
            return self._result(entry, None)
        return self._move(entry, entry.folder, entry.name, st)

    def _move(self, entry: Entry, folder: str, name: str, st: os.stat_result) -> EntryResult:
        try:
            outcome = self.mover.move(self.sources, entry.rel, folder, name, "skip", st, self.journal)
        except Vanished:
            return self._refused(entry, Refusal.GONE)
        except Changed:
            return self._refused(entry, Refusal.CHANGED, "written to during its copy")
        except Abandoned:
            return self._refused(entry, Refusal.STOPPED, "during its copy; it stays in the source")
        except MoveError as exc:
            return self._refused(entry, Refusal.FAILED, str(exc))
        except OSError as exc:
            return self._refused(entry, Refusal.FAILED, str(MoveError.from_os(exc, "move")))
        if outcome.kind is Kind.SKIPPED:  # taken in the instant since it was looked at
            return self._refused(entry, Refusal.TAKEN, f"{outcome.path} exists")
        if outcome.kind is Kind.MOVED:
            self._renamed.add(folder)
        return self._result(entry, outcome.kind)

    def _lstat(self, rel: str) -> os.stat_result:
        folder, _, name = rel.rpartition("/")
        fd = self.sources.lend(folder)
        try:
            return lstat_at(name, fd)
        finally:
            self.sources.give_back(fd)

    def _taken(self, folder: str, name: str) -> bool:
        try:
            fd = self.dests.lend(folder)
        except OSError:
            return False  # not there yet; or not a folder, which the move refuses and says so
        try:
            lstat_at(name, fd)
        except OSError:
            return False  # free; or it cannot be looked at, which the move meets too and reports
        finally:
            self.dests.give_back(fd)
        return True

    def _target(self, entry: Entry) -> str:
        if entry.folder is None or entry.name is None:
            return ""
        return self.dests.path(entry.folder, entry.name)

    def _result(self, entry: Entry, kind: Kind | None) -> EntryResult:
        return EntryResult(entry, self.sources.path(entry.rel), self._target(entry), kind)

    def _refused(self, entry: Entry, refusal: Refusal, detail: str = "") -> EntryResult:
        return EntryResult(entry, self.sources.path(entry.rel), self._target(entry), None, refusal, detail)
