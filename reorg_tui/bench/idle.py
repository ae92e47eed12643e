"""--idle: the CPU a running daemon uses with nothing to do, over a large folder of names it ignores."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from rich.console import Console

from reorg_tui.bench.daemon import start_headless, stop
from reorg_tui.bench.report import Figure
from reorg_tui.bench.workload import scratch
from reorg_tui.config import FIELDS
from reorg_tui.engine.intake import FULL_SCAN_EVERY
from reorg_tui.engine.publish import read_state


def measure(directory: Path | None, quiet_files: int, seconds: float, console: Console) -> list[Figure]:
    """CPU used by a running daemon with nothing to do, over a large folder of names it ignores."""
    import psutil

    root = scratch(directory)
    src = root / "src"
    src.mkdir()
    for i in range(quiet_files):
        (src / f"unrelated-{i:08d}.txt").touch()
    # A quiet folder: nothing changed in it for a while (its mtime says so).
    os.utime(src, ns=(time.time_ns(), time.time_ns() - 60 * 10**9))
    proc = start_headless(src, root / "dest", root)
    try:
        time.sleep(3)  # the first full scan and start-up
        ps = psutil.Process(proc.pid)
        before = ps.cpu_times()
        console.print(f"measuring idle CPU for {seconds:.0f} s over {quiet_files:,} ignored names...")
        time.sleep(seconds)
        after = ps.cpu_times()
        state = read_state(root / "st") or {}
        listing = float(state.get("snapshot", {}).get("last_scan_seconds", 0.0))
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
    used = (after.user - before.user) + (after.system - before.system)
    # Not in the window: the full listing the daemon makes every FULL_SCAN_EVERY polls even of an
    # unchanged folder. Spread over its period, it adds this much.
    period = FULL_SCAN_EVERY * float(FIELDS["poll_interval"].default)
    return [
        Figure("quiet files", float(quiet_files)),
        Figure("seconds", seconds),
        Figure("cpu seconds", used),
        Figure("percent of a core", 100 * used / seconds),
        Figure("full listing seconds", listing),
        Figure("with listings, percent", 100 * (used / seconds + listing / period)),
    ]
