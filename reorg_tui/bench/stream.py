"""--watch: files arriving at a steady rate into a running daemon; the time each takes to move."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from reorg_tui.bench import feeder
from reorg_tui.bench.daemon import parse_time, records, start_headless, stop
from reorg_tui.bench.report import BenchFailed, Figure
from reorg_tui.bench.workload import scratch
from reorg_tui.config import FIELDS


def measure(directory: Path | None, rate: float, seconds: float, console: Console) -> list[Figure]:
    """Files arriving at ``rate`` a second, the daemon at its default settings: the time from a
    file being ready (its writer's close plus the settle time, as the daemon defines ready: held
    still that long) to its move; and, for scale, from the close itself."""
    settle = float(FIELDS["settle"].default)

    root = scratch(directory)
    src, dest = root / "src", root / "dest"
    src.mkdir()
    closed: dict[str, float] = {}
    moved: dict[str, float] = {}
    paused: list[str] = []  # the messages of the daemon's "paused" records, should any come
    proc = start_headless(src, dest, root)
    try:
        time.sleep(1.5)  # start-up is not what this measures

        def read() -> None:
            assert proc.stderr is not None
            for record in records(proc.stderr):
                if record.get("event") == "moved":
                    moved[os.path.basename(record["destination"])] = parse_time(record["time"])
                elif record.get("event") == "paused":
                    paused.append(record["message"])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        total = int(rate * seconds)
        started = time.time()
        stamps = root / "closed.json"
        writer = feeder.start(src, rate, total, stamps, capture_errors=True)
        with Progress(
            TextColumn("feeding"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
        ) as bar:
            task = bar.add_task("feed", total=total)
            while writer.poll() is None:
                bar.update(task, completed=min(total, int((time.time() - started) * rate)))
                time.sleep(0.2)
        if writer.returncode != 0:
            assert writer.stderr is not None
            said = writer.stderr.read().decode(errors="replace").strip().splitlines()
            raise BenchFailed(f"the writer stopped: {said[-1] if said else f'exit {writer.returncode}'}")
        closed.update(json.loads(stamps.read_text()))
        deadline, last = time.time() + 30, (0, time.time())
        while len(moved) < total and time.time() < deadline:
            if len(moved) != last[0]:
                last = len(moved), time.time()
            elif paused and time.time() - last[1] > 3:
                break  # paused for lack of room and nothing moves: waiting longer shows nothing
            time.sleep(0.2)
        fed_for = max(closed.values()) - started
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
    delays = sorted(moved[n] - closed[n] for n in closed if n in moved)
    if len(delays) < total:
        why = (
            f"; the daemon paused intake ({paused[-1]}): the folder given to --dir is short "
            "of space or of inodes"
            if paused
            else ""
        )
        raise BenchFailed(f"{total - len(delays)} file(s) were not moved within 30 s of the end{why}")
    return [
        Figure("files", float(total)),
        Figure("achieved rate", total / fed_for),
        Figure("settle", settle, "s"),
        Figure("p50 after ready", delays[len(delays) // 2] - settle, "s"),
        Figure("p95 after ready", delays[int(len(delays) * 0.95)] - settle, "s"),
        Figure("max after ready", delays[-1] - settle, "s"),
        Figure("p50 after close", delays[len(delays) // 2], "s"),
    ]
