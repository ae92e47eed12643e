"""What an undo put back in the source stays there: until it changes, or the undo is undone.

An undo (undo.py) moves a delivered file back to its source name, where a daemon started later
would take it at once and deliver it again. So at start (``Engine._start``, after recovery) the
engine reads the ledger's finished undo rows whose target is in its source and that no later
undo reversed, and puts each file whose name still holds what the undo left there (the same
inode, size and mtime) into intake's skip memory (readiness.py): left untouched while it is the
same file, and new work once it changes or its name holds another file.

Also here, for undo.py and this: what a transfer left at its target (``holds``), and the undo
rows by the row each reverses (``finished_undos``).

Threads: the caller of ``Engine.run``, before the stages start; undo's one thread.
"""

from __future__ import annotations

import os
import stat
from typing import Protocol

from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.ledger import Ledger, Query, Transfer, TransferKind
from reorg_tui.engine.recovery import locate

EVERY = 1 << 62  # a query's limit that leaves no row out


class Skips(Protocol):
    def skip(self, rel: str, st: os.stat_result) -> None: ...


def holds(row: Transfer, st: os.stat_result) -> bool:
    """Whether ``st`` (a name's lstat) is the file ``row`` left at its target: the same inode
    (the source's, for a rename; the copy's, for a copy), size and mtime. Not the ctime: a
    rename moves it, so a file an undo renamed back would never match."""
    return stat.S_ISREG(st.st_mode) and not differs(row, st)


def differs(row: Transfer, st: os.stat_result) -> list[str]:
    """What of ``st`` is not as ``row`` left it: "inode", "size", "mtime" (none: the same file)."""
    ino = row.copy_ino if row.copy_ino is not None else row.identity.ino
    wrong = [
        ("inode", st.st_ino != ino),
        ("size", st.st_size != row.identity.size),
        ("mtime", st.st_mtime_ns != row.identity.mtime_ns),
    ]
    return [what for what, bad in wrong if bad]


def finished_undos(ledger: Ledger) -> dict[int, Transfer]:
    """Every finished undo, by the id of the row it reverses (the first one, should there be two)."""
    undos: dict[int, Transfer] = {}
    for row in ledger.query(Query(kinds=(TransferKind.UNDO,), done_only=True, limit=EVERY)):
        if row.undoes is not None:
            undos[row.undoes] = row  # newest first: the oldest is written last and kept
    return undos


def hold_undone(ledger: Ledger, sources: Tree, intake: Skips) -> int:
    """Put what undos left in the source, unchanged since, into intake's skip memory. Returns
    how many files it holds."""
    undos = finished_undos(ledger)
    held = 0
    for row in undos.values():
        if row.id in undos:
            continue  # itself undone: that file went back to the destination
        place = locate(row.target, [sources])
        st = place.lstat() if place is not None else None
        if place is None or st is None or not holds(row, st):
            continue  # changed, gone, or another file now: the daemon takes it as new work
        intake.skip(f"{place.folder}/{place.name}" if place.folder else place.name, st)
        held += 1
    return held
