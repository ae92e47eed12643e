"""--browser N: the dashboard's quarantine browser over N quarantined files, driven by the Pilot:
how soon the tab shows the count and the rows arrive, how long a filter keystroke takes to be
answered, the event loop's largest gap meanwhile (a timer's lateness: while the UI thread is
busy, the clock stops and keys go unanswered), how often the panes refreshed, and peak memory.

The quarantine is real (files, records and the ledger's index, on a tmpfs where one can be
mounted, else in the scratch folder) and so is the engine, which reconciles it at start."""

from __future__ import annotations

import asyncio
import resource
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console

from reorg_tui.bench.quarantine import fill
from reorg_tui.bench.report import BenchFailed, Figure
from reorg_tui.bench.workload import scratch
from reorg_tui.config import Settings
from reorg_tui.engine import Engine
from reorg_tui.engine.ledger import open_ledger
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost
from reorg_tui.tui.widgets.quarantine_table import QuarantineTable

TICK = 0.02  # seconds between the meter's ticks: a gap longer than this is the loop's lag


class MeteredApp(ReorgApp):
    """The product's dashboard, with a timer that notes how late each of its ticks comes, and a
    count of its refreshes (Textual runs ReorgApp's on_mount as well as this one)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.refreshes = 0
        self._last_tick: float | None = None
        self.largest_gap = 0.0
        self.gap_at = 0.0  # when (perf_counter) the largest gap ended

    def on_mount(self) -> None:
        self.set_interval(TICK, self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last_tick is not None and now - self._last_tick - TICK > self.largest_gap:
            self.largest_gap, self.gap_at = now - self._last_tick - TICK, now
        self._last_tick = now

    def reset_meter(self) -> None:
        self.largest_gap, self._last_tick = 0.0, None

    def refresh_from_engine(self) -> None:
        super().refresh_from_engine()
        self.refreshes += 1


def quarantined(root: Path, count: int) -> Settings:
    """Folders under ``root`` and a quarantine of ``count`` items in them, indexed."""
    paths = {name: root / name for name in ("source", "dest", "quarantine", "state_dir")}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    ledger = open_ledger(paths["state_dir"])
    try:
        fill(paths["quarantine"], count, ledger=ledger)
    finally:
        ledger.close()
    return Settings(**paths)  # type: ignore[arg-type]


async def until(condition: Callable[[], object], what: str, pause: Callable[[], Awaitable[None]], timeout: float) -> float:
    """Seconds until ``condition`` holds, pausing between looks; BenchFailed after ``timeout``."""
    began = time.perf_counter()
    while not condition():
        if time.perf_counter() - began > timeout:
            raise BenchFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        await pause()
    return time.perf_counter() - began
