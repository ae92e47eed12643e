"""``quarantine list|show|release|delete``: the quarantine store, for an operator or a script.

Each finds the ledger that indexes the quarantine as ``status`` finds the state folder: from the
source (``--source``, ``REORG_SOURCE`` or the config file), or ``--state-dir``. Without one, or
where that ledger does not index this quarantine, the records themselves are read (slower for a
large quarantine; the answer is the same). A state folder another user could have written is
not believed: the records are read, with a warning."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import humanize
import typer

from reorg_tui.cli.options import config_option, layered, shard_option
from reorg_tui.config import FIELDS, ConfigError, find_state_dir, parse_age, resolve
from reorg_tui.engine import QuarantineOps, QuarantineStore, Record, foreseen_failure, open_store
from reorg_tui.engine.locate import shard_state_dir
from reorg_tui.engine.statedir import UntrustedStateDir, check_for_reading
from reorg_tui.names import safe

app = typer.Typer(help="Inspect, release or delete quarantined files.")


def _store(
    ctx: typer.Context,
    quarantine: str | None,
    dest: str | None,
    config: Path | None,
    source: str | None = None,
    state_dir: str | None = None,
    shard: str | None = None,
) -> QuarantineStore:
    flags = {"quarantine": quarantine, "dest": dest, "source": source, "state_dir": state_dir, "shard": shard}
    given, config_file = layered(ctx, flags, config)
    values = resolve(given, config_file=config_file, required=())
    root = values["quarantine"]
    if root is None:
        if values["dest"] is None:
            raise ConfigError("--quarantine is required (or --dest, or set REORG_QUARANTINE)")
        root = values["dest"] / "_quarantine"
    if not root.is_dir():
        raise ConfigError(f"quarantine {root} does not exist")
    folder, where = values["state_dir"], None
    if values["source"] is not None:
        where = Path(os.path.realpath(values["source"]))
        folder = find_state_dir(where, folder, values["shard"])
    elif folder is not None:
        folder = shard_state_dir(folder, values["shard"])
    return open_store(root, _believed(folder, where))


def _ops(
    ctx: typer.Context, store: QuarantineStore, source: str | None, config: Path | None, *, required: bool
) -> QuarantineOps:
    """Release and delete as the daemon on the source does them: through it, where one runs."""
    given, config_file = layered(ctx, {"source": source}, config)
    values = resolve(given, config_file=config_file, required=("source",) if required else ())
    if values["source"] is None:  # (delete, with no source known: no daemon to ask)
        return QuarantineOps(store, None, None)
    path = Path(os.path.realpath(values["source"]))
    if not path.is_dir():
        raise ConfigError(f"source {path} does not exist")
    folder = find_state_dir(path, values["state_dir"], values["shard"])
    return QuarantineOps(store, path, _believed(folder, path))


@functools.lru_cache(maxsize=8)  # (one warning, though both the store and the ops look)
def _believed(folder: Path | None, source: Path | None) -> Path | None:
    """The state folder, unless another user could have written it (engine/statedir.py): then
    None, with a warning. Its ledger's index could list forged records and its control socket
    answer for a daemon that is not there: the records are read, and no instance is asked."""
    if folder is None:
        return None
    try:
        check_for_reading(folder, source)
    except UntrustedStateDir as exc:
        typer.echo(
            f"reorg-tui: warning: {safe(str(exc))}; reading the quarantine's records instead, "
            "and asking no running instance",
            err=True,
        )
        return None
    return folder


def _record_dict(store: QuarantineStore, record: Record) -> dict[str, Any]:
    path = os.path.join(store.root, record.id, record.name)  # store.file_path, without pathlib's cost
    return {**record.__dict__, "path": path, "age_seconds": round(record.age, 3)}


def _json_lines(items: list[dict[str, Any]]) -> str:
    """A JSON array with one object a line: as readable as an indented one, and written by the
    json module's C encoder (which an indent turns off) at tens of thousands of records."""
    return "[\n" + ",\n".join(json.dumps(item) for item in items) + "\n]" if items else "[]"


_Q = typer.Option(None, "--quarantine", "-q", help=FIELDS["quarantine"].help_text())
_D = typer.Option(None, "--dest", "-d", help=FIELDS["dest"].help_text())
_S = typer.Option(None, "--source", "-s", help=FIELDS["source"].help_text())
_J = typer.Option(False, "--json", help="Print JSON for scripts.")
_STATE = typer.Option(
    None,
    "--state-dir",
    help="The daemon's state folder, whose ledger indexes the quarantine; found from the source "
    "otherwise. [env: REORG_STATE_DIR]",
)
_ALL = typer.Option(False, "--all", help="Every quarantined file.")
_REASON = typer.Option(
    None, "--reason", metavar="TEXT", help="The files whose reason contains TEXT (any case)."
)
_OLDER = typer.Option(
    None,
    "--older-than",
    metavar="AGE",
    help="The files quarantined longer ago than AGE: 90s, 30m, 12h, 1d, 2w.",
)


@app.command("list")
def q_list(
    ctx: typer.Context,
    quarantine: str = _Q,
    dest: str = _D,
    source: str = _S,
    state_dir: str = _STATE,
    shard: str = shard_option(),
    config: Path = config_option(),
    older_than: str = _OLDER,
    as_json: bool = _J,
) -> None:
    """List quarantined files, oldest first."""
    store = _store(ctx, quarantine, dest, config, source, state_dir, shard)
    records = store.list(errors=as_json)
    if older_than is not None:
        limit = parse_age(older_than)
        records = [r for r in records if r.age >= limit]
    if as_json:
        typer.echo(_json_lines([_record_dict(store, r) for r in records]))
        return
    if not records:
        typer.echo(f"the quarantine {store.root} is empty")
        return
    lines = []  # written at once: tens of thousands of echo calls cost more than the query
    for r in records:
        size, age = _size_text(r.size), _age_text(r.age)
        lines.append(f"{safe(r.id)}  {size:>9}  {age:>12}  {safe(r.name)}  [{safe(r.reason)}]")
    total = sum(r.size for r in records)
    lines.append(f"{len(records)} file(s), {humanize.naturalsize(total, binary=True)}")
    typer.echo("\n".join(lines))


@functools.lru_cache(maxsize=4096)
def _size_text(size: int) -> str:
    return humanize.naturalsize(size, binary=True)


_AGE_WORDS = (
    (86_400, "day", "a day"),
    (3600, "hour", "an hour"),
    (60, "minute", "a minute"),
    (1, "second", "a second"),
)


def _age_text(age: float) -> str:
    """An age in the largest unit it fills, rounded ("3 hours", "a day"), in the words
    humanize uses: worked out here, at a few operations an item (a listing of 50,000 spent half
    its time in humanize)."""
    for i, (unit, name, one) in enumerate(_AGE_WORDS):
        if age >= unit or unit == 1:
            count = round(age / unit)
            if i and count * unit >= _AGE_WORDS[i - 1][0]:  # 59.6 minutes: an hour, not 60 minutes
                return _AGE_WORDS[i - 1][2]
            return one if count == 1 else f"{count} {name}s" if count else "a moment"
    raise AssertionError("unreachable")


@app.command("show")
def q_show(
    ctx: typer.Context,
    item_id: str = typer.Argument(..., metavar="ID", help="The id shown by `quarantine list`."),
    quarantine: str = _Q,
    dest: str = _D,
    source: str = _S,
    state_dir: str = _STATE,
    shard: str = shard_option(),
    config: Path = config_option(),
    as_json: bool = _J,
) -> None:
    """Show one quarantined file: where it came from, where it was going, every error."""
    store = _store(ctx, quarantine, dest, config, source, state_dir, shard)
    record = store.get(item_id)
    if as_json:
        typer.echo(json.dumps(_record_dict(store, record), indent=1))
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.quarantined_at))
    lines = [
        f"id:          {safe(record.id)}",
        f"file:        {safe(str(store.file_path(record)))}",
        f"original:    {safe(record.original)}",
        f"intended:    {safe(record.intended or '-')}",
        f"reason:      {safe(record.reason)}",
        f"attempts:    {record.attempts}",
        f"size:        {humanize.naturalsize(record.size, binary=True)}",
        f"quarantined: {when} ({humanize.naturaldelta(record.age)} ago)",
        "errors:",
        *(f"  - {safe(e)}" for e in record.errors),
    ]
    typer.echo("\n".join(lines))


def _select(
    store: QuarantineStore,
    item_ids: list[str] | None,
    every: bool,
    reason: str | None,
    older_than: str | None,
) -> list[Record]:
    """The files a release or delete acts on: the ids given, or those the filters match (--all:
    no filter). Ids and filters do not mix; unknown ids fail before anything is done (exit 4)."""
    filtered = every or reason is not None or older_than is not None
    if item_ids and filtered:
        raise ConfigError("give ids, or --all / --reason / --older-than, not both")
    if item_ids:
        return [store.get(i) for i in item_ids]
    if not filtered:
        raise ConfigError("name the files: ids, or --all, --reason TEXT or --older-than AGE")
    records = store.list()
    if reason is not None:
        records = [r for r in records if reason.casefold() in r.reason.casefold()]
    if older_than is not None:
        limit = parse_age(older_than)
        records = [r for r in records if r.age >= limit]
    return records


@app.command("release")
def q_release(
    ctx: typer.Context,
    item_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Ids shown by `quarantine list`."),
    quarantine: str = _Q,
    dest: str = _D,
    source: str = _S,
    config: Path = config_option(),
    every: bool = _ALL,
    reason: str = _REASON,
    older_than: str = _OLDER,
    as_json: bool = _J,
) -> None:
    """Put files back into the source, to go through the pipeline again (attempts reset).

    Where a file would only be quarantined again (a folder on its way is a file), a warning on
    stderr says why, and it is released all the same: fix the cause, and it moves."""
    store = _store(ctx, quarantine, dest, config, source)
    ops = _ops(ctx, store, source, config, required=True)
    records = _select(store, item_ids, every, reason, older_than)
    done = []
    for record in records:
        problem = foreseen_failure(record)
        if problem:
            typer.echo(f"reorg-tui: warning: {record.id} ({safe(record.name)}): {safe(problem)}", err=True)
        path = ops.release(record.id)
        done.append({"id": record.id, "released_to": path})
        if not as_json:
            typer.echo(f"released {record.id} -> {safe(path)}")
    if as_json:
        typer.echo(json.dumps(done, indent=1))
    elif not records:
        typer.echo("no quarantined file matches: nothing released")


@app.command("delete")
def q_delete(
    ctx: typer.Context,
    item_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Ids shown by `quarantine list`."),
    quarantine: str = _Q,
    dest: str = _D,
    source: str = _S,
    config: Path = config_option(),
    every: bool = _ALL,
    reason: str = _REASON,
    older_than: str = _OLDER,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = _J,
) -> None:
    """Delete quarantined files and their records, for good. Asks first, unless --yes; away from
    a terminal, refuses without --yes."""
    store = _store(ctx, quarantine, dest, config, source)
    ops = _ops(ctx, store, source, config, required=False)
    records = _select(store, item_ids, every, reason, older_than)
    if records and not yes:
        if not sys.stdin.isatty():
            raise ConfigError("refusing to delete without --yes when not at a terminal")
        names = ", ".join(safe(r.name) for r in records)
        typer.confirm(f"Delete {len(records)} file(s) for good: {names}?", abort=True)
    for record in records:
        ops.delete(record.id)
        if not as_json:
            typer.echo(f"deleted {record.id} ({safe(record.name)})")
    if as_json:
        typer.echo(json.dumps([r.id for r in records]))
    elif not records:
        typer.echo("no quarantined file matches: nothing deleted")
