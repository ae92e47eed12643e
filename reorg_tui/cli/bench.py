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
    seconds: float = typer.Option(
        60.0, "--seconds", min=1, help="How long --watch feeds, or --idle measures."
    ),
) -> None:
    """Measure the engine against a raw loop in the same run; print files/s, ratio, memory, CPU."""
    from rich.console import Console

    from reorg_tui.bench import dashboard_load, idle_cpu, run_bench, table, watch_latency

    if watch or idle or dashboard:
        console = Console(stderr=True)
        if watch:
            figures = watch_latency(directory, watch, seconds, console)
        elif idle:
            figures = idle_cpu(directory, files, seconds, console)
        else:
            figures = dashboard_load(directory, dashboard, seconds, console)
        for key, value in figures.items():
            timed = key.startswith(("p50", "p95", "max", "settle")) or key in ("key p50", "key p95")
            shown = f"{value:.3f} s" if timed else f"{value:,.2f}"
            typer.echo(f"{key:>18}: {shown}")
        return

    for label, folder in (("--dir", directory), ("--cross", cross)):
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"{label} {folder} is not a folder")
    results = run_bench(directory, files, size, cross, keep, rounds=rounds)
    where = "across filesystems" if cross else "one filesystem"
    Console(width=None if sys.stdout.isatty() else 110).print(table(results, files, size, where))
