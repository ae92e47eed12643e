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
import statistics
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
from reorg_tui.tui.driver import arrive
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


def measure(directory: Path | None, count: int, console: Console, *, keep: bool = False) -> list[Figure]:
    root = scratch(directory)
    mounted = _tmpfs(root / "fs", count)
    try:
        console.print(f"writing {count:,} quarantined files, their records and their index...")
        started = time.perf_counter()
        settings = quarantined(root / "fs", count)
        made = time.perf_counter() - started
        console.print(f"written in {made:.1f} s ({'tmpfs' if mounted else 'scratch folder'}); opening...")
        return asyncio.run(_drive(settings, count))
    finally:
        if mounted and not keep:
            subprocess.run(["umount", "-l", str(root / "fs")], capture_output=True)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


async def _drive(settings: Settings, count: int) -> list[Figure]:
    app = MeteredApp(EngineHost(Engine(settings)))
    needle = f"f{count // 2:08d}"[:-1]  # ten items (or fewer): f<n>0 to f<n>9
    cpu: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        tab = app.query_one("#tabs").get_tab("quarantine")  # type: ignore[attr-defined]
        table = app.query_one(QuarantineTable)

        async def look() -> None:
            # Not pilot.pause: that also repaints the screen, and 100 repaints a second would
            # keep the UI thread busier than any user does (the engine's threads wait for it).
            await asyncio.sleep(0.01)

        async def answered(key: str, text: str) -> float:
            """Seconds from the key's arrival until the rows answer the filter ``text``; and the UI
            thread's CPU meanwhile (this coroutine runs on it), noted in ``cpu``: on a shared
            machine the wall-clock figure depends on the neighbours, this one much less. The key
            is posted as a terminal's arrives, not through ``pilot.press``: that waits for the
            whole app to go idle (the panes' refreshes too) and would time the Pilot."""
            pressed, used = time.perf_counter(), time.thread_time()
            arrive(app, key)
            await until(lambda: table.settled and table.filter == text, f"the rows for {text!r}", look, 60)
            cpu.append(time.thread_time() - used)
            return time.perf_counter() - pressed

        counted = await until(lambda: f"({count})" in str(tab.label), "the tab's count", look, 120)
        listed = counted + await until(
            lambda: len(table.matches) == count and table.row_count, "rows", look, 120
        )
        opening_gap = app.largest_gap
        await pilot.press("2", "slash")
        await pilot.pause(0.5)
        app.reset_meter()
        refreshes, typed = app.refreshes, time.perf_counter()
        keystrokes = [await answered(key, needle[:n]) for n, key in enumerate(needle, start=1)]
        keystrokes.append(await answered("backspace", needle[:-1]))  # wider again: rows come back
        if len(table.matches) == count:
            raise BenchFailed(f"typing {needle!r} did not narrow the rows")
        span = time.perf_counter() - typed
        figures = [
            Figure("items", count),
            Figure("tab shows count", counted, "s"),  # from the dashboard's start: the engine's too
            Figure("rows listed", listed, "s"),
            Figure("gap while opening", opening_gap, "s"),
            Figure("keystrokes", len(keystrokes)),
            Figure("keystroke median", statistics.median(keystrokes), "s"),
            Figure("keystroke worst", max(keystrokes), "s"),
            Figure("UI CPU a keystroke", statistics.median(cpu), "s"),
            Figure("gap while typing", app.largest_gap, "s"),
            Figure("refreshes/s typing", (app.refreshes - refreshes) / span),
            Figure("peak memory", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MB"),
        ]
        await pilot.press("escape", "q", "q")
    return figures


def _tmpfs(point: Path, count: int) -> bool:
    """A tmpfs for the quarantine where one can be mounted (root): on a disk, writing 150,000
    files takes half a minute; the browser's figures do not depend on where they are."""
    point.mkdir(parents=True)
    inodes = 3 * count + 10_000
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=2g,nr_inodes={inodes}", "tmpfs", str(point)],
        capture_output=True,
    )
    return done.returncode == 0


async def until(
    condition: Callable[[], object], what: str, pause: Callable[[], Awaitable[None]], timeout: float
) -> float:
    """Seconds until ``condition`` holds, pausing between looks; BenchFailed after ``timeout``."""
    began = time.perf_counter()
    while not condition():
        if time.perf_counter() - began > timeout:
            raise BenchFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        await pause()
    return time.perf_counter() - began
