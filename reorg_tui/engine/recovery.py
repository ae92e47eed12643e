"""Recovery after a crash: the ledger's open rows, each finished or withdrawn by what it says.

A row is acted on only where its owner is gone (another live instance's work in progress is left
alone) and only on paths below the roots this engine was given, opened without following links:
a row edited by hand to name a file elsewhere touches nothing.

- ``intent``: the copy had begun. Its staging file (if it is still the copy's inode) is removed;
  the file is in the source alone. Withdrawn.
- ``staged``: the copy was whole. If its staging file is still there, it is removed (withdrawn);
  if not, the crash came after it was published and before that was written: the target folder
  is searched for the copy's inode, and the row goes on as published.
- ``published``: the copy should be at its target. Only if the target still holds that copy (its
  inode, size and mtime) and the source name still holds the same file (inode, size, mtime, ctime
  unchanged) is the source removed; the row is done. A target that no longer holds the copy (it
  was being taken back when the crash came, or the row lies) leaves the source alone: withdrawn.
  A source that is gone or holds another file: only the published copy is this transfer's, done.

Every path a row names is checked before it is used: below a root, no "." or ".." parts, and a
staging file only in a root's staging folder under a name the mover gives (``PID-TOKEN-N.part``).

Nothing is guessed from bytes: a file the ledger does not claim is new work, and the conflict
policy decides what becomes of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass

from reorg_tui.engine import steps
from reorg_tui.engine.dirs import NotAFolder, Tree
from reorg_tui.engine.fileops import lstat_at
from reorg_tui.engine.ledger import Ledger, LedgerError, LedgerWriteError, Step, Transfer, owner_alive
from reorg_tui.engine.move import PART, is_staging_folder

log = logging.getLogger(__name__)


@dataclass
class Recovered:
    finished: int = 0  # published copies whose source was then removed (or was gone)
    withdrawn: int = 0  # copies taken back: the file is where it was
    left: int = 0  # rows of another live instance, or naming paths outside every root

    @property
    def acted(self) -> int:
        return self.finished + self.withdrawn


class _Place:
    """A path below one of the roots: its tree, its folder below the root, and its name."""

    def __init__(self, tree: Tree, folder: str, name: str) -> None:
        self.tree, self.folder, self.name = tree, folder, name

    def lstat(self) -> os.stat_result | None:
        try:
            with self.tree.folder(self.folder) as fd:
                return lstat_at(self.name, fd)
        except (FileNotFoundError, NotAFolder, NotADirectoryError):
            return None

    def unlink_if(self, ino: int) -> bool:
        """Remove the name if it still holds inode ``ino``."""
        try:
            with self.tree.folder(self.folder) as fd:
                if lstat_at(self.name, fd).st_ino != ino:
                    return False
                os.unlink(self.name, dir_fd=fd)
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                return True
        except (FileNotFoundError, NotAFolder, NotADirectoryError):
            return False

    def holds(self, ino: int, size: int, mtime_ns: int) -> bool:
        """Whether the name holds that copy: its inode, with the source's size and mtime (a copy
        is given the source's mtime), so a reused inode number is not taken for it."""
        st = self.lstat()
        return st is not None and _is_copy(st, ino, size, mtime_ns)

    def find(self, ino: int, size: int, mtime_ns: int) -> str | None:
        """The name in this place's folder that holds that copy (see ``holds``), if any."""
        try:
            with self.tree.folder(self.folder) as fd, os.scandir(fd) as entries:
                for entry in entries:
                    if entry.inode() == ino and _is_copy(lstat_at(entry.name, fd), ino, size, mtime_ns):
                        return entry.name
        except (FileNotFoundError, NotAFolder, NotADirectoryError):
            return None
        return None

    def path(self, name: str | None = None) -> str:
        return self.tree.path(self.folder, name or self.name)


def locate(path: bytes, trees: list[Tree]) -> _Place | None:
    """Where ``path`` is below one of ``trees``' roots (the deepest that holds it), or None: a
    path outside them all, or with "." or ".." parts, is not this engine's to touch."""
    text = os.fsdecode(path)
    best: Tree | None = None
    for tree in trees:
        root = tree.root.rstrip("/")
        if text.startswith(root + "/") and (best is None or len(root) > len(best.root.rstrip("/"))):
            best = tree
    if best is None:
        return None
    rel = text[len(best.root.rstrip("/")) + 1 :]
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\0" in rel:
        return None
    return _Place(best, "/".join(parts[:-1]), parts[-1])


def recover(ledger: Ledger, trees: list[Tree]) -> Recovered:
    """Finish or withdraw every open row of a dead owner (see the opening comment). LedgerError
    if the ledger cannot be written meanwhile (a full state folder): nothing is touched that the
    ledger could not then record."""
    try:
        return _recover(ledger, trees)
    except LedgerWriteError as exc:
        raise LedgerError(f"cannot write the ledger to recover an interrupted run: {exc}") from None


def _recover(ledger: Ledger, trees: list[Tree]) -> Recovered:
    done = Recovered()
    for row in ledger.open_rows():
        if row.owner != ledger.owner and owner_alive(row.owner):
            done.left += 1
            continue
        source, target = locate(row.source, trees), locate(row.target, trees)
        staging = locate(row.staging, trees) if row.staging is not None else None
        if staging is not None and not (is_staging_folder(staging.folder) and PART.fullmatch(staging.name)):
            staging = None  # not a staging file of the mover's: never removed as one
        if source is None or target is None or (row.staging is not None and staging is None):
            log.warning("ledger row %s names a path outside the folders it may touch: left alone", row.id)
            done.left += 1
            continue
        if row.id is None or not ledger.claim(row.id):
            done.left += 1
            continue
        steps.reached("recovering")
        _recover_row(ledger, row, source, target, staging, done)
    return done


def _recover_row(
    ledger: Ledger, row: Transfer, source: _Place, target: _Place, staging: _Place | None, done: Recovered
) -> None:
    assert row.id is not None
    step = row.step
    if step in (Step.INTENT, Step.STAGED):
        if staging is not None and row.copy_ino is not None and staging.lstat() is not None:
            staging.unlink_if(row.copy_ino)
            ledger.advance(row.id, Step.WITHDRAWN, error="interrupted before it was published")
            done.withdrawn += 1
            return
        found = None
        if step is Step.STAGED and row.copy_ino is not None:
            found = target.find(row.copy_ino, row.identity.size, row.identity.mtime_ns)
        if found is None:
            ledger.advance(row.id, Step.WITHDRAWN, error="interrupted before it was published")
            done.withdrawn += 1
            return
        # Published, and the crash came before that was written down.
        target = _Place(target.tree, target.folder, found)
        ledger.advance(row.id, Step.PUBLISHED, target=os.fsencode(target.path()))
    elif row.copy_ino is None or not target.holds(row.copy_ino, row.identity.size, row.identity.mtime_ns):
        # Its copy is not where the row says (taken back as the crash came, or the row is not
        # the truth): the source is the file, and stays.
        ledger.advance(row.id, Step.WITHDRAWN, error="its published copy is not at its target")
        done.withdrawn += 1
        return
    now = source.lstat()
    if now is not None and row.identity.matches(now):
        source.unlink_if(row.identity.ino)
    ledger.advance(row.id, Step.DONE)
    done.finished += 1


def _is_copy(st: os.stat_result, ino: int, size: int, mtime_ns: int) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_ino == ino and st.st_size == size and st.st_mtime_ns == mtime_ns
