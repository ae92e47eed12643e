"""``undo`` on a fleet's source (``--coordinator``): the fleet's deliveries (any instance's, any
host's, read from the coordinator: a fleet's instance keeps no finished rows in its own ledger),
and what the single host's ``undone.py`` does at a daemon's start, done for the whole fleet.

Before: no instance of the fleet may run on the source (any host's: the coordinator's snapshots
say; one would list what the undo puts back at once): DaemonRunning, exit 3. After: each file put
back is recorded with the coordinator under the identity it has in the source now, in state
'undone' (PgLedger.hold), so the fleet's lister, whichever instance it is, leaves it alone until
it changes. An instance's state that says it was one of a fleet refuses an undo without the URL.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from reorg_tui.config import ConfigError
from reorg_tui.engine import State, UndoResult, UndoSelection
from reorg_tui.engine.ledger import Query, Transfer, TransferKind
from reorg_tui.engine.undo import DaemonRunning, FleetRows, newest_of
from reorg_tui.engine.undone import EVERY


def check_fleet_stopped(url: str | None, source: Path, last: dict[str, Any], *, dry_run: bool) -> None:
    """Refuse the undo while the fleet on ``source`` runs (not a dry run: it changes nothing), or
    without ``url`` on a fleet's source (a dry run too: it would find nothing to undo)."""
    fleet = last.get("fleet")
    if not url:
        if isinstance(fleet, dict):
            where = fleet.get("coordinator")
            raise ConfigError(
                f"{source} is a fleet's source (coordinator {where if isinstance(where, str) else '?'}): "
                "give --coordinator URL, so that the fleet leaves the files put back alone"
            )
        return
    if dry_run:
        return
    from reorg_tui.engine.ledger_pg import check_url
    from reorg_tui.fleet_status import check_fleet
    from reorg_tui.status import DOWN

    check_url(url)
    health = check_fleet(url, str(source))
    if not health.members and health.line.startswith("down: the coordinator"):
        raise ConfigError(f"undo refused: cannot tell whether the fleet runs: {health.line[6:]}")
    members = [m for ms in health.members.values() for m in ms]
    running = [m for m in members if m.state != State.STOPPED and m.code != DOWN]  # (down: gone)
    if running:
        who = ", ".join(f"{m.host} pid {m.pid}" for m in running)
        raise DaemonRunning(
            f"{len(running)} instance(s) of the fleet run on {source} ({who}): they would deliver "
            "what the undo puts back; stop them first"
        )


def hold_in_fleet(url: str | None, source: Path, result: UndoResult) -> bool:
    """Record with the coordinator each file the undo put back; False (said on stderr) where it
    could not be: the fleet would then deliver them again when it starts."""
    if not url or not result.undone:
        return True
    from reorg_tui.engine.ledger_pg import CoordinatorDown, CoordinatorError, PgLedger

    files = []
    for _, now in result.undone:
        rel = os.path.relpath(now, source)
        if rel == ".." or rel.startswith("../"):
            continue  # an undo of an undo: delivered again, not put back in the source
        try:
            files.append((rel, os.lstat(now)))
        except OSError:
            continue  # gone again already: nothing to hold
    if not files:
        return True
    ledger = PgLedger(url, owner=f"undo {socket.gethostname()} {os.getpid()}", identity=str(source))
    try:
        ledger.hold(files)
    except (CoordinatorDown, CoordinatorError) as exc:
        typer.echo(
            f"reorg-tui: warning: the coordinator did not record the {len(files)} file(s) put back "
            f"({exc}): the fleet will deliver them again when it starts",
            err=True,
        )
        return False
    finally:
        ledger.close()
    return True


@contextmanager
def fleet_rows(url: str | None, source: Path) -> Iterator[FleetRows | None]:
    """The fleet's deliveries on ``source`` for Undo.select, read from the coordinator (every
    instance's, any host's); None without a coordinator."""
    if not url:
        yield None
        return
    from reorg_tui.engine.ledger_pg import CoordinatorDown, CoordinatorError, PgLedger

    ledger = PgLedger(url, owner="undo", identity=str(source))

    def rows(what: UndoSelection) -> tuple[list[Transfer], list[str]]:
        try:
            found = ledger.query(Query(since=what.since, limit=EVERY))
        except CoordinatorDown as exc:
            raise CoordinatorError(f"nothing undone: the coordinator does not answer: {exc}") from None
        found = [row for row in found if row.kind is TransferKind.DELIVER]  # (newest first)
        if not what.paths:
            return found, []
        return newest_of(found, {os.fsencode(p): p for p in what.paths})

    try:
        yield rows
    finally:
        ledger.close()
