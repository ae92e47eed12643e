"""``undo``: delivered files back to their source names (engine/undo.py), for an operator.

The instance is found as ``status`` finds it: from ``--source`` (its state folder, wherever it
keeps it) or ``--state-dir``; the destination and quarantine from the flags or the config file,
or else from the state the instance last published.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from reorg_tui.cli.options import config_option, layered, shard_option, state_dir_option
from reorg_tui.cli.undo_fleet import check_fleet_stopped, fleet_rows, hold_in_fleet
from reorg_tui.config import FIELDS, ConfigError, find_state_dir, parse_age, resolve
from reorg_tui.engine import (
    ExitCode,
    Skipped,
    UndoPlan,
    UndoResult,
    UndoSelection,
    open_undo,
    source_holder,
)
from reorg_tui.engine.publish import read_state
from reorg_tui.names import safe

EPILOG = (
    "Exit codes: 0 every file undone; 1 some were skipped or refused (each is listed with its reason); "
    "2 bad settings or usage (also: no --yes away from a terminal); 3 a daemon is processing the source "
    "(stop it first); 4 nothing matched; 70 internal error."
)
SHOWN = 10  # files listed before asking
PROGRESS_FROM = 100  # files: from this many, progress on stderr about once a second


def undo(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        None, metavar="PATH", help="Delivered files, by their destination or source path."
    ),
    since: str = typer.Option(
        None, "--since", metavar="AGE", help="The deliveries of the last AGE: 90s, 30m, 12h, 1d, 2w."
    ),
    batch: str = typer.Option(
        None, "--batch", metavar="ID", help="One batch: the daemon's, or an undo's (to undo the undo)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be undone; touch nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    source: str = typer.Option(None, "--source", "-s", help=FIELDS["source"].help_text()),
    dest: str = typer.Option(
        None, "--dest", "-d", help="The destination (default: the one the instance last ran with)."
    ),
    state_dir: str = state_dir_option(),
    shard: str = shard_option(),
    config: Path = config_option(),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        metavar="URL",
        help="A fleet's source: its coordinator, which then keeps every instance (any host's) from "
        "delivering the files put back; refused while one runs. [env: REORG_COORDINATOR]",
    ),
) -> None:
    """Move delivered files back to their source names, newest first (--since AGE, --batch ID,
    or PATH...). Nothing is overwritten: a file whose source name is taken now, or that is no
    longer the file delivered (another inode, size or mtime), is skipped with the reason. An
    undo is recorded like any move, so it can itself be undone (--batch with the id it prints).
    A daemon must not run on the source meanwhile: it would take the files straight back. When
    it starts again, an undone file stays in the source until it changes or you undo the undo.
    On a fleet's source, give --coordinator: the fleet's deliveries (every instance's) are
    undone, with no instance of it running, and the whole fleet then leaves them alone too.
    Asks first, unless --yes; away from a terminal, refuses without --yes."""
    chosen = [what for what, given in (("--since", since), ("--batch", batch), ("PATH", paths)) if given]
    if len(chosen) != 1:
        raise ConfigError("name what to undo: --since AGE, --batch ID or PATH..., one of them")
    if not (yes or dry_run or sys.stdin.isatty()):
        raise ConfigError("refusing to undo without --yes when not at a terminal")
    selection = UndoSelection(
        since=time.time() - parse_age(since, "--since") if since else None,
        batch=batch,
        paths=tuple(_absolute(p) for p in paths or ()),
    )
    flags = {
        "source": source,
        "dest": dest,
        "state_dir": state_dir,
        "shard": shard,
        "coordinator": coordinator,
    }
    where, url, last = _instance(ctx, flags, config)
    check_fleet_stopped(url, where["source"], last, dry_run=dry_run)
    if dry_run and (who := source_holder(where["source"])):
        typer.echo(
            f"reorg-tui: warning: {who} is processing {where['source']}: stop it before the undo", err=True
        )
    stop = threading.Event()
    with (
        fleet_rows(url, where["source"]) as fleet,
        open_undo(**where, dry_run=dry_run, stop=stop, fleet=fleet) as job,
    ):
        if job.recovered.acted:
            typer.echo(
                f"reorg-tui: recovered from an interrupted run: finished {job.recovered.finished} and "
                f"withdrew {job.recovered.withdrawn} transfer(s) the ledger had open",
                err=True,
            )
        plan = job.select(selection)
        if not plan.matched:
            typer.echo(f"reorg-tui: nothing to undo: {_nothing(selection, since)}", err=True)
            raise typer.Exit(ExitCode.NOT_FOUND)
        if dry_run:
            raise typer.Exit(_show_plan(plan))
        if plan.items and not yes:
            _ask(plan)
        with _stopped_by_signals(stop):
            result = job.run(plan, _progress(len(plan.items)))
    code = _report(result)
    held = hold_in_fleet(url, where["source"], result)
    raise typer.Exit(code if held else max(code, ExitCode.LEFT_BEHIND))


def _absolute(path: str) -> str:
    """A PATH as the ledger spells it: absolute, its folder's symlinks resolved (the file itself
    may be elsewhere now, or a symlink: it is not followed)."""
    full = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))


def _instance(
    ctx: typer.Context, flags: dict[str, Any], config: Path | None
) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """The source, destination, quarantine and state folder of the instance to undo on; the
    fleet's coordinator, if given; the snapshot the instance last published."""
    given, config_file = layered(ctx, flags, config)
    values = resolve(given, config_file=config_file, required=())
    source, state = values["source"], values["state_dir"]
    if source is None and state is None:
        raise ConfigError("--source (or --state-dir) is required to find the instance's ledger")
    if source is not None:
        source = Path(os.path.realpath(source))
        state = find_state_dir(source, state, values["shard"])
    elif values["shard"] is not None:
        state = state / values["shard"].folder
    last = (read_state(state) or {}).get("snapshot", {})  # what it last ran with
    last = last if isinstance(last, dict) else {}
    source = source or _path(last.get("source"))
    dest = _path(values["dest"]) or _path(last.get("dest"))
    if source is None or dest is None:
        missing = "--source" if source is None else "--dest"
        raise ConfigError(
            f"{missing} is required: no instance published its state in {state} "
            "(pass the --state-dir it runs with, or the folders)"
        )
    quarantine = _path(values["quarantine"]) or _path(last.get("quarantine_dir")) or dest / "_quarantine"
    for label, folder in (("source", source), ("destination", dest)):
        if not folder.is_dir():
            raise ConfigError(f"{label} {folder} does not exist")
    kept = quarantine if quarantine.is_dir() else None  # (only recovery looks there)
    where = {"source": source, "dest": dest, "state_dir": state, "quarantine": kept}
    return where, values.get("coordinator") or None, last


def _path(value: object) -> Path | None:
    return Path(os.path.realpath(value)) if isinstance(value, str | Path) and str(value) else None


def _nothing(selection: UndoSelection, since: str | None) -> str:
    if selection.paths:
        return "no transfer of " + ", ".join(safe(p) for p in selection.paths) + " is recorded"
    if selection.batch is not None:
        return f"no finished transfer in batch {safe(selection.batch)}"
    return f"no delivery recorded in the last {safe(since or '')}"


def _why(skip: Skipped) -> str:
    return f"{safe(skip.path)}: {skip.reason}" + (f" ({safe(skip.detail)})" if skip.detail else "")


def _reasons(skipped: list[Skipped]) -> str:
    counts = Counter(s.reason for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


def _show_plan(plan: UndoPlan) -> int:
    for item in plan.items:
        typer.echo(f"would undo {safe(item.origin)} -> {safe(item.back)}")
    for skip in plan.skipped:
        typer.echo(f"would skip {_why(skip)}")
    tail = f" ({_reasons(plan.skipped)})" if plan.skipped else ""
    typer.echo(
        f"dry run: {len(plan.items)} would be undone, {len(plan.skipped)} skipped{tail}; nothing was touched"
    )
    return ExitCode.LEFT_BEHIND if plan.skipped else ExitCode.OK


def _ask(plan: UndoPlan) -> None:
    typer.echo(f"{len(plan.items)} file(s) to move back to the source, newest first:")
    for item in plan.items[:SHOWN]:
        typer.echo(f"  {safe(item.origin)} -> {safe(item.back)}")
    if len(plan.items) > SHOWN:
        typer.echo(f"  ... and {len(plan.items) - SHOWN} more")
    if plan.skipped:
        typer.echo(f"{len(plan.skipped)} to skip: {_reasons(plan.skipped)}")
    typer.confirm("Undo them?", abort=True)


def _progress(total: int) -> Callable[[int, int], None] | None:
    if total < PROGRESS_FROM:
        return None
    shown = [time.monotonic()]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 1.0 or done == total:
            shown[0] = now
            typer.echo(f"reorg-tui: undo: {done} of {total} file(s)", err=True)

    return progress


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM stop the undo between files (a copy in flight is abandoned, whole)
    instead of interrupting a step: every file moved is written to the ledger."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _report(result: UndoResult) -> int:
    for item, now in result.undone:
        typer.echo(f"undone {safe(item.origin)} -> {safe(now)}")
    for skip in result.skipped:
        typer.echo(f"skipped {_why(skip)}")
    tail = f" ({_reasons(result.skipped)})" if result.skipped else ""
    typer.echo(f"{len(result.undone)} undone, {len(result.skipped)} skipped{tail}")
    if result.undone:
        typer.echo(f"undo batch {result.batch}: `reorg-tui undo --batch {result.batch}` puts them back")
    return ExitCode.LEFT_BEHIND if result.skipped else ExitCode.OK
