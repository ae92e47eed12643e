"""Undo: delivered files moved back to their source names, through the one transfer protocol.

``open_undo`` takes the source's lock (a daemon on the source would deliver an undone file
straight back, so while one runs, undo refuses: ``DaemonRunning``, exit 3), opens the ledger and
finishes or withdraws what an interrupted run left open (recovery.py), as a daemon's start does.
``Undo.select`` reads which transfers to reverse: the deliveries since a time, a batch (the
daemon's, or an undo's), or the last transfer of each path given. ``Undo.run`` reverses them,
newest first, each with a ``Mover`` of kind UNDO into the tree its file came from, journaled with
``undoes`` = the row it reverses. So an undo is undone the same way: its file goes back exactly
where the undo took it from (undoing an undo is a delivery again, of kind undo).

Undos chain: a row, the undo that reversed it, the undo of that undo, and so on. What stands is
the chain's last row (its tip); a row is undone where an odd number of undos follow it. Only a
tip is ever reversed, so no row is undone twice.

A transfer is reversed only where its target name still holds what it left there (the inode,
size and mtime: see undone.holds), and only where the name it goes back to is free: nothing is
overwritten and no collision name is given. Anything else is skipped with its reason (``Skipped``).
Emptied date folders in the destination are removed; source folders are left as they are.

Threads: the caller's, one. ``stop`` (set from a signal handler) ends the run between files and
abandons a copy in flight; what was not reached is reported as interrupted.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from reorg_tui.engine.dirs import NotAFolder, Tree
from reorg_tui.engine.errors import Abandoned, Changed, ExitCode, MoveError, ReorgError, Vanished
from reorg_tui.engine.kinds import Kind
from reorg_tui.engine.ledger import LEDGER_NAME, Ledger, Query, Transfer, TransferKind, open_ledger
from reorg_tui.engine.lock import AlreadyRunning, SourceLock, lock_holder, source_is_locked
from reorg_tui.engine.move import STAGING, Journal, Mover
from reorg_tui.engine.recovery import Recovered, locate, recover
from reorg_tui.engine.statedir import check_for_reading
from reorg_tui.engine.undone import EVERY, differs, finished_undos, holds

if TYPE_CHECKING:
    from reorg_tui.engine.recovery import _Place


class DaemonRunning(ReorgError):
    """A daemon holds the source: it would deliver what an undo puts back at once."""

    exit_code = ExitCode.ALREADY_RUNNING


class NothingToUndo(ReorgError):
    exit_code = ExitCode.NOT_FOUND


class SkipReason(StrEnum):
    """Why a file was not undone."""

    ALREADY = "already undone"
    UNKNOWN = "not in the ledger"
    OUTSIDE = "outside the source and the destination"
    GONE = "gone from where it was delivered"
    REPLACED = "no longer the file delivered"
    TAKEN = "name taken"
    FAILED = "move failed"
    INTERRUPTED = "interrupted"


class Skipped(NamedTuple):
    path: str  # the file (where the transfer left it), or the PATH given
    reason: SkipReason
    detail: str = ""


class Item(NamedTuple):
    """A transfer to reverse: its file goes from the row's target back to its source."""

    row: Transfer
    local: bool = True  # a row of this ledger (False: a fleet's, from its coordinator)

    @property
    def origin(self) -> str:
        return self.row.target_path

    @property
    def back(self) -> str:
        return self.row.source_path


@dataclass(frozen=True)
class UndoSelection:
    """What to undo: one of the three."""

    since: float | None = None  # the deliveries started at or after (wall clock)
    batch: str | None = None  # the rows of one batch, a daemon's or an undo's
    paths: tuple[str, ...] = ()  # absolute paths: the last transfer of each, by source or target


@dataclass
class UndoPlan:
    items: list[Item]  # newest first
    skipped: list[Skipped]

    @property
    def matched(self) -> bool:
        """Whether the ledger had any transfer that was asked for (to undo, or skipped)."""
        return bool(self.items) or any(s.reason is not SkipReason.UNKNOWN for s in self.skipped)


@dataclass
class UndoResult:
    undone: list[tuple[Item, str]] = field(default_factory=list)  # and where the file is now
    skipped: list[Skipped] = field(default_factory=list)
    batch: str = ""  # the undo's own batch: ``undo --batch`` it to put the files back


class _Ready(NamedTuple):
    origin: _Place  # where the file is
    back: _Place  # where it goes
    st: os.stat_result


Touched = tuple[int, str]  # a tree (its index in Undo.trees) and a folder below its root


# A fleet's deliveries (``undo --coordinator``): the rows an UndoSelection names, by since or by
# paths (the last delivery of each), and the paths no row named. Not by batch: a fleet's rows
# have none; an undo's own batch is in this ledger.
FleetRows = Callable[["UndoSelection"], tuple[list[Transfer], list[str]]]


class Undo:
    def __init__(
        self,
        ledger: Ledger,
        trees: list[Tree],
        *,
        stop: threading.Event,
        clock: Callable[[], float],
        fleet: FleetRows | None = None,
    ) -> None:
        self.ledger = ledger
        self.fleet = fleet
        self.trees = trees  # the source's and the destination's, in that order
        self.stop = stop
        self.recovered = Recovered()
        token = ledger.owner.rpartition(":")[2]
        self.batch = f"undo-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(clock()))}-{token}"
        self._movers = {id(t): Mover(t, ledger=ledger, kind=TransferKind.UNDO, stop=stop) for t in trees}

    # ---- what to undo ----------------------------------------------------------------------

    def select(self, what: UndoSelection) -> UndoPlan:
        if self.fleet is not None and what.batch is None:
            return self._select_fleet(what, self.fleet)
        undos = finished_undos(self.ledger)
        unknown: list[str] = []
        if what.paths:
            rows, unknown = self._last_of(what.paths)
        else:
            kinds = (
                (TransferKind.DELIVER,) if what.batch is None else (TransferKind.DELIVER, TransferKind.UNDO)
            )
            query = Query(since=what.since, batch=what.batch, kinds=kinds, done_only=True, limit=EVERY)
            rows = self.ledger.query(query)
        tips: dict[int, Transfer] = {}
        skipped = [Skipped(path, SkipReason.UNKNOWN) for path in unknown]
        for row in rows:
            tip, hops = _tip(row, undos)
            if hops % 2:
                skipped.append(Skipped(row.target_path, SkipReason.ALREADY, f"by {tip.batch}"))
            elif tip.id is not None:
                tips[tip.id] = tip
        items = []
        for tip_id in sorted(tips, reverse=True):
            checked = self._check(tips[tip_id])
            if isinstance(checked, Skipped):
                skipped.append(checked)
            else:
                items.append(Item(tips[tip_id]))
        return UndoPlan(items, skipped)

    def _select_fleet(self, what: UndoSelection, fleet: FleetRows) -> UndoPlan:
        """A fleet's deliveries, newest first. No chain of undos to follow: an undo of a fleet's
        row is this ledger's (without ``undoes``), and a delivery already undone is skipped as
        gone from its target (or replaced there)."""
        rows, unknown = fleet(what)
        skipped = [Skipped(path, SkipReason.UNKNOWN) for path in unknown]
        items = []
        for row in rows:
            checked = self._check(row)
            if isinstance(checked, Skipped):
                skipped.append(checked)
            else:
                items.append(Item(row, local=False))
        return UndoPlan(items, skipped)

    def _last_of(self, paths: tuple[str, ...]) -> tuple[list[Transfer], list[str]]:
        """The newest finished transfer that named each path (as its source or its target)."""
        wanted = {os.fsencode(p): p for p in paths}
        keys = list(wanted)
        rows: list[Transfer] = []
        for start in range(0, len(keys), 400):  # a bounded number of values per query
            chunk = tuple(keys[start : start + 400])
            kinds = (TransferKind.DELIVER, TransferKind.UNDO)
            rows += self.ledger.query(Query(paths=chunk, kinds=kinds, done_only=True, limit=EVERY))
        return newest_of(sorted(rows, key=lambda r: r.id or 0, reverse=True), wanted)

    def _check(self, row: Transfer) -> Skipped | _Ready:
        """Whether ``row`` can be reversed now: its file is what it left, where it left it, and
        the name it goes back to is free."""
        origin, back = locate(row.target, self.trees), locate(row.source, self.trees)
        if origin is None or back is None:
            roots = " or ".join(t.root for t in self.trees)
            return Skipped(
                row.target_path,
                SkipReason.OUTSIDE,
                f"{row.source_path} -> {row.target_path}: not below {roots}",
            )
        st = origin.lstat()
        if st is None:
            return Skipped(row.target_path, SkipReason.GONE)
        if not holds(row, st):
            what = ", ".join(differs(row, st)) or "type"
            return Skipped(
                row.target_path, SkipReason.REPLACED, f"its {what} differ(s) from what was delivered"
            )
        if back.lstat() is not None:
            return Skipped(row.target_path, SkipReason.TAKEN, f"{row.source_path} exists")
        return _Ready(origin, back, st)

    # ---- doing it --------------------------------------------------------------------------

    def run(self, plan: UndoPlan, progress: Callable[[int, int], None] | None = None) -> UndoResult:
        """Reverse the plan's transfers, newest first, each checked again just before."""
        result = UndoResult(skipped=list(plan.skipped), batch=self.batch)
        left: set[Touched] = set()  # folders files left: fsynced; emptied date folders removed
        arrived: set[Touched] = set()  # folders files arrived in: fsynced
        try:
            for n, item in enumerate(plan.items):
                if self.stop.is_set():
                    result.skipped += [Skipped(i.origin, SkipReason.INTERRUPTED) for i in plan.items[n:]]
                    break
                outcome = self._reverse(item)
                if isinstance(outcome, Skipped):
                    result.skipped.append(outcome)
                else:
                    path, origin, back = outcome
                    result.undone.append((item, path))
                    left.add(origin)
                    arrived.add(back)
                if progress is not None:
                    progress(n + 1, len(plan.items))
        finally:
            self._tidy(left, arrived)
        return result

    def _reverse(self, item: Item) -> Skipped | tuple[str, Touched, Touched]:
        checked = self._check(item.row)
        if isinstance(checked, Skipped):
            return checked
        origin, back, st = checked
        rel = f"{origin.folder}/{origin.name}" if origin.folder else origin.name
        mover = self._movers[id(back.tree)]
        journal = Journal(batch=self.batch, undoes=item.row.id if item.local else None)
        try:
            outcome = mover.move(origin.tree, rel, back.folder, back.name, "skip", st=st, journal=journal)
        except Vanished:
            return Skipped(item.origin, SkipReason.GONE, "it went away during the undo")
        except Changed:
            return Skipped(item.origin, SkipReason.REPLACED, "it was written to during the undo")
        except Abandoned:
            return Skipped(item.origin, SkipReason.INTERRUPTED)
        except (MoveError, OSError) as exc:
            return Skipped(item.origin, SkipReason.FAILED, str(exc))
        if outcome.kind is Kind.SKIPPED:
            return Skipped(item.origin, SkipReason.TAKEN, f"{item.back} was taken during the undo")
        where = self.trees.index
        return outcome.path, (where(origin.tree), origin.folder), (where(back.tree), back.folder)

    def _tidy(self, left: set[Touched], arrived: set[Touched]) -> None:
        """Make the renames durable, and remove what the undo emptied: the destination's date
        folders its files left (not the source's folders: those are the user's), and a staging
        folder a copy made in the source."""
        for index, folder in sorted(left | arrived):
            with contextlib.suppress(OSError):
                self.trees[index].sync(folder)
        dest = len(self.trees) - 1
        for index, folder in left:
            while index == dest and folder and _rmdir(self.trees[index], folder):
                folder = folder.rpartition("/")[0]
        _rmdir(self.trees[0], STAGING)
        for tree in self.trees:
            tree.forget()


def _rmdir(tree: Tree, rel: str) -> bool:
    """Remove the folder ``rel`` below the tree's root if it is empty (opened no-follow)."""
    head, _, name = rel.rpartition("/")
    tree.forget()  # its own descriptor may be cached: let go of it first
    try:
        with tree.folder(head) as fd:
            os.rmdir(name, dir_fd=fd)
            with contextlib.suppress(OSError):
                os.fsync(fd)
        return True
    except (OSError, NotAFolder):
        return False


def newest_of(rows: list[Transfer], wanted: dict[bytes, str]) -> tuple[list[Transfer], list[str]]:
    """Of ``rows`` (newest first), the newest that named each wanted path (as its source or its
    target), a row named twice once; and the wanted paths (as given) that no row named."""
    newest: dict[bytes, Transfer] = {}
    for row in rows:
        for path in (row.source, row.target):
            if path in wanted:
                newest.setdefault(path, row)
    found = list({id(r): r for r in newest.values()}.values())
    return found, [given for key, given in wanted.items() if key not in newest]


def _tip(row: Transfer, undos: dict[int, Transfer]) -> tuple[Transfer, int]:
    """The last row of ``row``'s chain of undos, and how many undos lead there."""
    hops = 0
    while row.id is not None and (after := undos.get(row.id)) is not None and (after.id or 0) > row.id:
        row, hops = after, hops + 1
    return row, hops


@contextlib.contextmanager
def open_undo(
    source: Path,
    dest: Path,
    state_dir: Path,
    *,
    quarantine: Path | None = None,
    dry_run: bool = False,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
    fleet: FleetRows | None = None,
) -> Iterator[Undo]:
    """An ``Undo`` on the ledger in ``state_dir``. Unless ``dry_run``: with the source's lock
    held (DaemonRunning if a daemon holds it) and the ledger's interrupted rows recovered.
    NothingToUndo where there is no ledger."""
    if not (state_dir / LEDGER_NAME).is_file():
        raise NothingToUndo(
            f"nothing to undo: no ledger in {state_dir} (nothing recorded for this source yet, or "
            "its instance keeps its state elsewhere: pass its --state-dir or --config)"
        )
    lock = SourceLock(source, state_dir)
    if dry_run:  # as any reader: a folder another user could write may hold a forged ledger
        check_for_reading(state_dir, source)
    else:  # (the lock refuses a folder that is not this user's, and takes the source)
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            who = f"pid {exc.pid}" if exc.pid else "another process"
            raise DaemonRunning(
                f"a reorg-tui instance ({who}) is processing {source} and would deliver undone files "
                "straight back: stop it first, undo, then start it again"
            ) from None
    trees = [
        Tree(str(source), capacity=64, create_root=False),
        Tree(str(dest), capacity=64, create_root=False),
    ]
    ledger: Ledger | None = None
    try:
        # A dry run writes nothing, the ledger included (no migration, no -wal made).
        ledger = open_ledger(state_dir, read_only=True) if dry_run else open_ledger(state_dir, create=False)
        undo = Undo(ledger, trees, stop=stop or threading.Event(), clock=clock, fleet=fleet)
        if not dry_run:
            extra = [Tree(str(quarantine), capacity=16, create_root=False)] if quarantine else []
            undo.recovered = recover(ledger, trees + extra)
        yield undo
    finally:
        for tree in trees:
            tree.close()
        if ledger is not None:
            ledger.close()
        lock.release()


def source_holder(source: Path) -> str | None:
    """Who holds the source's lock ("pid N", or "another process"), or None: nobody."""
    if not source_is_locked(source):
        return None
    pid = lock_holder(source)
    return f"pid {pid}" if pid else "another process"
