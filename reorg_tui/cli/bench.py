"""``bench``: the engine against a raw loop, or a running daemon measured (reorg_tui.bench)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reorg_tui.config import ConfigError


def bench(
    directory: Path = typer.Option(
        None, "--dir", help="Where to make the workload (default: a temporary folder)."
    ),
    files: int = typer.Option(20_000, "--files", min=1, help="Files in the backlog."),
    size: int = typer.Option(100, "--size", min=0, help="Bytes per file."),
    cross: Path = typer.Option(
        None, "--cross", help="Put the destination here, on another filesystem, and compare with a copy loop."
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the workload folders afterwards."),
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="Run both sides this many times, alternating; report medians."
    ),
    watch: float = typer.Option(
        0.0,
        "--watch",
        metavar="FILES_PER_S",
        help="Instead: feed a running daemon this many files/s; report latency.",
    ),
    idle: bool = typer.Option(
        False, "--idle", help="Instead: CPU of a daemon with nothing to do (--files ignored names)."
    ),
    dashboard: float = typer.Option(
        0.0,
        "--dashboard",
        metavar="FILES_PER_S",
        help="Instead: the dashboard's refreshes and key latency under load.",
    ),
    quarantine: int = typer.Option(
        0,
        "--quarantine",
        metavar="ITEMS",
        help="Instead: `quarantine list` of this many quarantined files, cold, with and without the ledger.",
    ),
    browser: int = typer.Option(
        0,
        "--browser",
        metavar="ITEMS",
        help="Instead: the dashboard's quarantine browser over this many quarantined files (opening, keys).",
    ),
    seconds: float = typer.Option(
        60.0, "--seconds", min=1, help="How long --watch feeds, or --idle measures."
    ),
    fleet: int = typer.Option(
        0,
        "--fleet",
        metavar="N",
        min=0,
        max=64,
        help="Instead: files/s of a fleet of 1, 2 and N instances beside the single host, one backlog "
        "each (--files); nothing may be lost.",
    ),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        metavar="URL",
        help="With --fleet: the PostgreSQL to use (the bench's rows are removed after); default: one "
        "the bench starts with pgserver.",
        envvar="REORG_COORDINATOR",
        show_envvar=False,
    ),
) -> None:
    """Measure the engine against a raw loop in the same run; print files/s, ratio, memory, CPU."""
    from rich.console import Console

    if watch or idle or dashboard or quarantine or browser or fleet:
        console = Console(stderr=True)
        if fleet:
            from reorg_tui.bench import fleet as fleet_mode

            figures = fleet_mode.measure(directory, fleet, files, coordinator, console)
        elif browser:
            from reorg_tui.bench import browser as browser_mode  # imports Textual

            figures = browser_mode.measure(directory, browser, console, keep=keep)
        elif quarantine:
            from reorg_tui.bench import quarantine as quarantine_mode

            figures = quarantine_mode.measure(directory, quarantine, console, keep=keep)
        elif watch:
            from reorg_tui.bench import stream

            figures = stream.measure(directory, watch, seconds, console)
        elif idle:
            from reorg_tui.bench import idle as idle_mode

            figures = idle_mode.measure(directory, files, seconds, console)
        else:
            from reorg_tui.bench import dashboard as dashboard_mode  # imports Textual

            figures = dashboard_mode.measure(directory, dashboard, seconds, console)
        for figure in figures:
            typer.echo(figure.line())
        return

    from reorg_tui.bench import backlog

    for label, folder in (("--dir", directory), ("--cross", cross)):
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"{label} {folder} is not a folder")
    results = backlog.run(directory, files, size, cross, keep, rounds=rounds)
    where = "across filesystems" if cross else "one filesystem"
    Console(width=None if sys.stdout.isatty() else 110).print(backlog.table(results, files, size, where))
