"""For operators: ``status`` of a running instance, and ``config supervisord|systemd``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from reorg_tui.cli.options import config_option, layered, with_settings
from reorg_tui.config import FIELDS, ConfigError, find_state_dir, load, resolve

config_app = typer.Typer(help="Print deployment files that match the settings given.")


def status(
    ctx: typer.Context,
    source: str = typer.Option(None, "--source", "-s", help=FIELDS["source"].help_text()),
    state_dir: str = typer.Option(
        None,
        "--state-dir",
        help="The instance's state folder, if it was started with one; found from --source otherwise. "
        "[env: REORG_STATE_DIR]",
    ),
    config: Path = config_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Health of the instance running on this source (found from --source alone, even if it was
    started with --state-dir). Exit 0 healthy; 1 degraded: an alert, a pause for disk, an
    operator's pause with files waiting, or files in the quarantine; 2 not running or stale."""
    from reorg_tui.status import check

    given, config_file = layered(ctx, {"source": source, "state_dir": state_dir}, config)
    values = resolve(given, config_file=config_file, required=())
    folder, where = values["state_dir"], values["source"]
    if where is None:
        if folder is None:
            raise ConfigError("--source (or --state-dir) is required to find the running instance")
    else:
        where = Path(os.path.realpath(where))
        folder = find_state_dir(where, folder)
    health = check(folder, source=where)
    typer.echo(json.dumps(health.to_dict(), indent=1) if as_json else health.line)
    raise typer.Exit(health.code)


@config_app.command("supervisord")
@with_settings
def config_supervisord(ctx: typer.Context, *, flags: dict[str, Any], config: Path | None) -> None:
    """A [program:reorg-tui] section for supervisord."""
    from reorg_tui.deploy import supervisord

    given, config_file = layered(ctx, flags, config)
    typer.echo(supervisord(load(given, config_file=config_file)), nl=False)


@config_app.command("systemd")
@with_settings
def config_systemd(ctx: typer.Context, *, flags: dict[str, Any], config: Path | None) -> None:
    """A systemd unit with Restart=on-failure and hardening."""
    from reorg_tui.deploy import systemd

    given, config_file = layered(ctx, flags, config)
    typer.echo(systemd(load(given, config_file=config_file)), nl=False)
