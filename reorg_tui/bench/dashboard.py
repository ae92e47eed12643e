"""--dashboard: the real dashboard hosting the engine under a stream of files: how often its panes
refresh, and how long a key press takes to be answered (driven by Textual's Pilot)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console

from reorg_tui.bench import feeder
from reorg_tui.bench.report import Figure
from reorg_tui.bench.workload import scratch
from reorg_tui.config import FIELDS, Settings
from reorg_tui.engine import Engine
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost
from reorg_tui.tui.screens.help import HelpScreen


class MeasuredApp(ReorgApp):
    """The product's dashboard, counting its refreshes and stamping when the help key is answered."""

    refreshes = 0
    key_answered_at = 0.0

    def refresh_from_engine(self) -> None:
        super().refresh_from_engine()
        self.refreshes += 1

    def action_help(self) -> None:
        self.key_answered_at = time.perf_counter()
        super().action_help()


def measure(directory: Path | None, rate: float, seconds: float, console: Console) -> list[Figure]:
    """The dashboard while files arrive at ``rate`` a second (the writer is its own process: in
    this one it would compete with the app for the GIL)."""
    root = scratch(directory)
    for name in ("src", "dest"):
        (root / name).mkdir()
    settings = Settings(source=root / "src", dest=root / "dest", quarantine=root / "q", state_dir=root / "st")
    app = MeasuredApp(EngineHost(Engine(settings)))
    writer: subprocess.Popen[bytes] | None = None
    figures: list[Figure] = []

    async def drive() -> None:
        nonlocal writer
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(1.0)
            writer = feeder.start(root / "src", rate, 0)
            # Reach a steady state: files first wait out the settle time, then move.
            await pilot.pause(float(FIELDS["settle"].default) + 2.0)
            first_refreshes, first_moved, began = (
                app.refreshes,
                app.host.snapshot().totals.moved,
                time.perf_counter(),
            )
            latencies = []
            while time.perf_counter() - began < seconds:
                pressed = time.perf_counter()
                await pilot.press("question_mark")
                latencies.append(app.key_answered_at - pressed)
                if not isinstance(app.screen, HelpScreen):
                    raise RuntimeError("the help screen did not open")
                await pilot.press("escape")
                await pilot.pause(0.5)
            span = time.perf_counter() - began
            moved = app.host.snapshot().totals.moved - first_moved
            latencies.sort()
            figures.extend(
                [
                    Figure("files moved per second", moved / span),
                    Figure("refreshes per second", (app.refreshes - first_refreshes) / span),
                    Figure("key presses", float(len(latencies))),
                    Figure("key p50", latencies[len(latencies) // 2], "s"),
                    Figure("key p95", latencies[int(len(latencies) * 0.95)], "s"),
                ]
            )
            writer.kill()
            await pilot.press("q")

    console.print(f"dashboard under {rate:,.0f} files/s for {seconds:.0f} s...")
    try:
        asyncio.run(drive())
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
        shutil.rmtree(root, ignore_errors=True)
    return figures
