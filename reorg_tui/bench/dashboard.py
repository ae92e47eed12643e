"""--dashboard: the real dashboard hosting the engine under a stream of files, beside the headless
daemon under the same stream in the same run: files moved a second by each and their ratio, how
often the dashboard's panes refresh, and how long a key press takes to be answered (driven by
Textual's Pilot).

The key is ``f`` (follow the activity again), once a second: it is answered on the UI thread like
any key, and it opens no screen of its own, so the bench adds no more work than an operator
watching does (the help screen opened twice a second did: its figures counted the bench's own
load)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console

from reorg_tui.bench import feeder
from reorg_tui.bench.daemon import start_headless, stop
from reorg_tui.bench.report import BenchFailed, Figure
from reorg_tui.bench.workload import scratch
from reorg_tui.config import FIELDS, Settings
from reorg_tui.engine import Engine
from reorg_tui.engine.publish import read_state
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost

SETTLE = float(FIELDS["settle"].default)


class MeasuredApp(ReorgApp):
    """The product's dashboard, counting its refreshes and stamping when a view key is answered."""

    refreshes = 0
    key_answered_at = 0.0

    def refresh_from_engine(self) -> None:
        super().refresh_from_engine()
        self.refreshes += 1

    def action_follow_activity(self) -> None:
        self.key_answered_at = time.perf_counter()
        super().action_follow_activity()


def _dashboard(root: Path, rate: float, seconds: float) -> list[Figure]:
    for name in ("src", "dest"):
        (root / name).mkdir()
    settings = Settings(source=root / "src", dest=root / "dest", quarantine=root / "q", state_dir=root / "st")
    app = MeasuredApp(EngineHost(Engine(settings)))
    figures: list[Figure] = []
    writer: subprocess.Popen[bytes] | None = None

    async def drive() -> None:
        nonlocal writer
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(1.0)
            writer = feeder.start(root / "src", rate, 0)
            # Reach a steady state: files first wait out the settle time, then move.
            await pilot.pause(SETTLE + 2.0)
            first_refreshes, first_moved = app.refreshes, app.host.snapshot().totals.moved
            began = time.perf_counter()
            latencies = []
            while time.perf_counter() - began < seconds:
                pressed = time.perf_counter()
                await pilot.press("f")
                if app.key_answered_at < pressed:
                    raise BenchFailed("the key was not answered")
                latencies.append(app.key_answered_at - pressed)
                await pilot.pause(1.0)
            span = time.perf_counter() - began
            moved = app.host.snapshot().totals.moved - first_moved
            writer.kill()
            latencies.sort()
            figures.extend(
                [
                    Figure("dashboard: files moved per second", moved / span),
                    Figure("refreshes per second", (app.refreshes - first_refreshes) / span),
                    Figure("key presses", float(len(latencies))),
                    Figure("key p50", latencies[len(latencies) // 2], "s"),
                    Figure("key p95", latencies[int(len(latencies) * 0.95)], "s"),
                ]
            )
            await pilot.press("q")

    try:
        asyncio.run(drive())
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
    return figures


def _moved(state: Path) -> int:
    published = read_state(state)
    return int(published["snapshot"]["totals"]["moved"]) if published else 0


def _headless(root: Path, rate: float, seconds: float) -> float:
    """Files moved a second by the headless daemon under the same stream, counted from the
    snapshot it publishes (about once a second: the window is measured between two of them)."""
    src, state = root / "src", root / "st"  # start_headless puts its state folder there
    src.mkdir()
    proc = start_headless(src, root / "dest", root)
    writer = feeder.start(src, rate, 0)
    try:
        time.sleep(1.0 + SETTLE + 2.0)
        first, began = _moved(state), time.perf_counter()
        time.sleep(seconds)
        last, span = _moved(state), time.perf_counter() - began
    finally:
        writer.kill()
        writer.wait()
        stop(proc)
    if proc.returncode != 0:
        raise BenchFailed(f"the headless daemon exited with {proc.returncode}")
    return (last - first) / span


def measure(directory: Path | None, rate: float, seconds: float, console: Console) -> list[Figure]:
    """The dashboard, then the headless daemon, while files arrive at ``rate`` a second (the writer
    is its own process: in this one it would compete with the app for the GIL)."""
    console.print(f"dashboard, then headless, each under {rate:,.0f} files/s for {seconds:.0f} s...")
    roots = [scratch(directory), scratch(directory)]
    try:
        figures = _dashboard(roots[0], rate, seconds)
        headless = _headless(roots[1], rate, seconds)
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    dashboard = figures[0].value
    return [
        *figures[:1],
        Figure("headless: files moved per second", headless),
        Figure("dashboard / headless", dashboard / headless if headless else 0.0),
        *figures[1:],
    ]
