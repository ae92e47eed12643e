"""The root command (the dashboard, --headless, --once, --dry-run, --version) and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from reorg_tui import __version__
from reorg_tui.cli.options import with_settings
from reorg_tui.config import ConfigError, load


@with_settings
def main_command(
    ctx: typer.Context,
    headless: bool = typer.Option(
        False, "--headless", help="Run without the dashboard (for supervisord, systemd)."
    ),
    once: bool = typer.Option(
        False, "--once", help="Headless: process what is in the source now, then exit."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each planned move and touch nothing."),
    plan_file: Path = typer.Option(
        None,
        "--plan",
        metavar="FILE",
        help="With --dry-run: also write the plan as JSON to FILE (outside the source and "
        "destination), each file with its identity, for `reorg-tui apply FILE`.",
    ),
    read_only: bool = typer.Option(
        False,
        "--read-only",
        help="The dashboard attached to the daemon on the source as a viewer: every pane live; "
        "no pause, release or delete (the daemon's control socket refuses them too).",
    ),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    *,
    flags: dict[str, Any],
    config: Path | None,
) -> None:
    """Without a command: run the engine (the dashboard, or --headless)."""
    ctx.obj = {"flags": flags, "config": config}  # for a subcommand's options.layered
    if version:
        typer.echo(f"reorg-tui {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is not None:
        return
    if plan_file is not None and not dry_run:
        raise ConfigError("--plan is written by a dry run: give --dry-run with it")
    settings = load(flags, config_file=config)
    if dry_run:
        from reorg_tui.headless import dry_run as plan

        raise typer.Exit(plan(settings, plan_file=plan_file))
    if once and settings.coordinator:
        raise ConfigError(
            "--once does not go with --coordinator: a fleet's instance runs until stopped (run "
            "--once without it, with no fleet running on the source)"
        )
    if read_only and (headless or once or dry_run):
        raise ConfigError("--read-only is the dashboard's: it does not go with --headless or --once")
    if not (headless or once):
        from reorg_tui.tui.run import run_dashboard  # Textual is imported only here

        raise typer.Exit(run_dashboard(settings, read_only=read_only))
    from reorg_tui.headless import run_headless

    raise typer.Exit(run_headless(settings, once=once, reread=lambda: load(flags, config_file=config)))


def demo(
    directory: Path = typer.Option(
        None, "--dir", help="Where to make the sandbox (default: a new temporary folder)."
    ),
    rate: float = typer.Option(20.0, "--rate", help="Files fed into the source per second."),
    backlog: int = typer.Option(200, "--backlog", help="Files in the source before the engine starts."),
    duration: float = typer.Option(
        0.0, "--duration", help="Stop after this many seconds (0: until Ctrl-C or q)."
    ),
    headless: bool = typer.Option(False, "--headless", help="Show the log instead of the dashboard."),
) -> None:
    """Open the dashboard on a self-contained sandbox fed with generated files, some failing on purpose."""
    from reorg_tui.demo import run_demo

    raise typer.Exit(run_demo(directory, rate=rate, backlog=backlog, duration=duration, headless=headless))
