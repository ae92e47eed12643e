"""The ledgers of a source's other setups, read at each start: a crash under one setup must not
leave a file in two places once the source runs under another.

A crash between publishing a cross-filesystem copy and removing its source leaves an open row in
that instance's ledger, and only a start that reads that ledger finishes it (recovery.py). An
instance without --shard keeps its ledger in the state folder; a shard (``--shard K/N``) in a
folder ``shard-K-of-N`` below it. After a switch (no shards -> shards, shards -> none, N -> M)
the new setup would read none of the old rows, and the file's new owner would move its source
copy again, the conflict policy making a duplicate beside the published one.

So each start, once its own ledger is recovered and before it scans, looks at the other setups'
state folders for this source: the one without --shard and the ``shard-J-of-M`` ones, both in
the folder it was given (or the default) and in the default, and where a pointer in the default
folder says one keeps its state; not the other shards of its own N beside it (each finishes its
own rows when it starts, and takes only its own files). A folder that a live instance holds
(its flock) is left alone; so is one another user could have written (statedir.py).
Open rows are finished or withdrawn by the one recovery, acting only on this instance's roots.
A ledger with a row this setup cannot finish (naming a destination or quarantine it does not
use) is left as it is, all of it, and the start refuses, exit 3, naming the folder and the setup
to run once.

A shard does this under ``shards.lock`` (shard_lock.py): of the shards of a new N starting at
once, the first finishes every old row before any of them scans. An instance without --shard
holds the source alone, so no other setup can start meanwhile.

Threads: whoever starts the engine (its ``_start``); no state kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from reorg_tui.engine import statedir
from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.ledger import LEDGER_NAME, LedgerError, Transfer, open_ledger
from reorg_tui.engine.locate import default_state_dir, find_state_dir, pointer_name
from reorg_tui.engine.lock import let_go, take_folder
from reorg_tui.engine.recovery import locate, recover
from reorg_tui.engine.shard import MAX_SHARDS, Shard

log = logging.getLogger(__name__)
_SHARD_FOLDER = re.compile(r"shard-([0-9]+)-of-([0-9]+)", re.ASCII)
_SHARD_POINTER = re.compile(r"state-dir\.shard-([0-9]+)-of-([0-9]+)\.json", re.ASCII)


class OtherSetupUnfinished(ReorgError):
    """Another setup's ledger holds transfers this one cannot finish: run that setup once."""

    exit_code = ExitCode.ALREADY_RUNNING


@dataclass
class OtherSetups:
    """What the other setups' ledgers held open, and what became of it."""

    finished: int = 0
    withdrawn: int = 0
    folders: list[Path] = field(default_factory=list)  # those where something was done

    @property
    def acted(self) -> int:
        return self.finished + self.withdrawn


def recover_other_setups(
    source: Path, state_dir: Path, shard: Shard | None, trees: list[Tree]
) -> OtherSetups:
    """Finish or withdraw the open transfers in the ledgers of ``source``'s other setups (see
    the opening comment); OtherSetupUnfinished if some cannot be, here."""
    done = OtherSetups()
    folders = _candidates(source, state_dir, shard)
    if not folders:
        return done
    mutex = None
    if shard is not None:
        from reorg_tui.engine.shard_lock import hold_mutex

        mutex = hold_mutex(default_state_dir(source), source)
    try:
        for folder, setup in folders:
            _recover_one(folder, setup, source, trees, done)
    finally:
        if mutex is not None:
            os.close(mutex)  # closing lets go of shards.lock
    return done


def _candidates(source: Path, state_dir: Path, shard: Shard | None) -> list[tuple[Path, Shard | None]]:
    """The state folders of the other setups (each with its shard, None: without --shard) that
    hold a ledger, this instance's own left out."""
    default = default_state_dir(source)
    given = state_dir if shard is None else state_dir.parent
    found: dict[Path, Shard | None] = {}
    for base in (given, default):
        found.setdefault(base, None)
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(base)):
                match = _SHARD_FOLDER.fullmatch(name)
                other = _shard(match)
                if other is not None:
                    found.setdefault(base / name, other)
    with contextlib.suppress(OSError):  # where an instance started with a --state-dir said it keeps it
        for name in sorted(os.listdir(default)):
            other = _shard(_SHARD_POINTER.fullmatch(name))
            if other is not None or name == pointer_name(None):
                found.setdefault(find_state_dir(source, None, other), other)
    own, beside = os.path.realpath(state_dir), os.path.realpath(given)

    def sibling(folder: Path, other: Shard | None) -> bool:
        """Another shard of this N beside this one: it finishes its own rows when it starts."""
        same_n = other is not None and shard is not None and other.n == shard.n and other != shard
        return same_n and os.path.realpath(folder.parent) == beside

    return [
        (folder, other)
        for folder, other in found.items()
        if os.path.realpath(folder) != own and not sibling(folder, other)
        if os.path.isfile(folder / LEDGER_NAME)
    ]


def _shard(match: re.Match[str] | None) -> Shard | None:
    if match is None:
        return None
    k, n = int(match.group(1)), int(match.group(2))
    return Shard(k, n) if 0 <= k < n <= MAX_SHARDS else None


def _recover_one(
    folder: Path, setup: Shard | None, source: Path, trees: list[Tree], done: OtherSetups
) -> None:
    try:
        statedir.check(folder, owners={os.geteuid()})
    except statedir.UntrustedStateDir as exc:
        log.warning("left the ledger of another setup alone: %s", exc)
        return
    rows = _open_rows(folder)
    if not rows:
        return
    held = take_folder(folder)  # (a live instance holds its state folder: its rows are its own)
    if held is None:
        return
    try:
        # All or nothing: a row naming a folder this setup does not use is not for it to finish.
        left = sum(1 for row in rows if not _within(row, trees))
        if not left:
            ledger = open_ledger(folder, create=False)
            try:
                recovered = recover(ledger, trees)
                left = len(ledger.open_rows())
            finally:
                ledger.close()
            done.finished += recovered.finished
            done.withdrawn += recovered.withdrawn
            if recovered.acted:
                done.folders.append(folder)
    finally:
        let_go(held)
    if left:
        how = "--once without --shard" if setup is None else f"--once --shard {setup}"
        raise OtherSetupUnfinished(
            f"{folder} holds {left} transfer(s) that an earlier run on {source} "
            f"{'without --shard' if setup is None else f'as shard {setup}'} left open, naming "
            f"folders this one does not use (another destination or quarantine): run that setup "
            f"once ({how}, its other settings as they were) to finish them, then start this one"
        )


def _open_rows(folder: Path) -> list[Transfer]:
    """The open rows of the ledger in ``folder``, looked at read-only (most starts find none,
    and nothing is then opened for writing, migrated or made there)."""
    try:
        ledger = open_ledger(folder, read_only=True)
    except LedgerError as exc:
        log.warning("cannot read the ledger of another setup in %s: %s", folder, exc)
        return []
    try:
        return ledger.open_rows()
    finally:
        ledger.close()


def _within(row: Transfer, trees: list[Tree]) -> bool:
    """Whether every path of ``row`` is below this instance's roots (recovery may act on it)."""
    paths = [row.source, row.target] + ([row.staging] if row.staging is not None else [])
    return all(locate(path, trees) is not None for path in paths)
