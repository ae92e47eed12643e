"""``history NAME-OR-GLOB``: where a file went, when, and through which attempts (the ledger)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer

from reorg_tui.cli.ops import SOURCE_OPTION, instance_state_dir
from reorg_tui.cli.options import config_option, layered, shard_option, state_dir_option
from reorg_tui.config import parse_age, resolve
from reorg_tui.engine.ledger import NoLedger, Query, Transfer
from reorg_tui.engine.statedir import check_for_reading
from reorg_tui.history import as_dict, block, is_glob, read
from reorg_tui.names import safe

EPILOG = (
    "NAME-OR-GLOB matches a file's name (the last part of its source or target path): a name "
    "without * ? [ matches exactly that name; quote a glob so the shell leaves it alone. "
    "--json prints an array, newest first; paths are strings, an undecodable byte written as "
    "Python's surrogateescape keeps it (0xff as \\udcff), so os.fsencode gives the bytes back. "
    "Reading never creates or changes the ledger. "
    "Exit codes: 0 ok (also when nothing matches: no rows, or []); 2 bad settings or usage, a "
    "ledger from a newer version or not a ledger, or a state folder another user could write; "
    "4 no ledger (no file has been moved with this state folder yet: check --source or "
    "--state-dir); 70 internal error."
)


def history(
    ctx: typer.Context,
    name: str = typer.Argument(
        ..., metavar="NAME-OR-GLOB", help="A file name, or a glob such as '2024-11-*'."
    ),
    since: str = typer.Option(
        None, "--since", metavar="AGE", help="Only transfers begun in the last AGE: 90s, 10m, 1h, 2d, 1w."
    ),
    limit: int = typer.Option(100, "--limit", min=1, metavar="N", help="At most N transfers, the newest."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    source: str = SOURCE_OPTION,
    state_dir: str = state_dir_option(),
    shard: str = shard_option(),
    config: Path = config_option(),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        metavar="URL",
        help="The fleet's history: every instance's work on this coordinator (on --source only, "
        "if given). [env: REORG_COORDINATOR]",
    ),
) -> None:
    """Where files went: each transfer of a file of that name (delivered, quarantined, released,
    undone, or withdrawn), newest first, with when, from, to, and the errors of its earlier
    attempts. Read from the ledger of the instance on the source, running or not."""
    after = time.time() - parse_age(since, "--since") if since is not None else None
    query = Query(name=name, since=after, limit=limit + 1)
    given, config_file = layered(ctx, {"source": source, "coordinator": coordinator}, config)
    values = resolve(given, config_file=config_file, required=())
    if values["coordinator"]:
        rows = _fleet(values["coordinator"], values["source"], query)
    else:
        folder, where, _ = instance_state_dir(ctx, source, state_dir, config, shard)
        check_for_reading(folder, where)  # a ledger another user could write may tell any story
        try:
            rows = read(folder, query)
        except NoLedger as exc:
            raise NoLedger(f"no history: {exc}") from None
    more, rows = len(rows) > limit, rows[:limit]
    if as_json:
        typer.echo(json.dumps([as_dict(row) for row in rows], indent=1))
        return
    if not rows:
        what = "matching" if is_glob(name) else "named"
        window = f" in the last {safe(since)}" if since is not None else ""
        typer.echo(f"no history: no transfer of a file {what} {safe(name)}{window}")
        return
    typer.echo("\n\n".join("\n".join(block(row)) for row in rows))
    if more:
        typer.echo(f"\n(the newest {limit} shown; --limit N for more, --since AGE for fewer)")


def _fleet(url: str, source: Path | None, query: Query) -> list[Transfer]:
    """The fleet's rows; the coordinator not answering is one line, exit 2."""
    from reorg_tui.engine.ledger_pg import CoordinatorDown, CoordinatorError, PgLedger, check_url

    check_url(url)
    ledger = PgLedger(url, owner="history", identity=os.path.realpath(source) if source else "")
    try:
        return ledger.query(query)
    except CoordinatorDown as exc:
        raise CoordinatorError(f"no history: the coordinator does not answer: {exc}") from None
    finally:
        ledger.close()
