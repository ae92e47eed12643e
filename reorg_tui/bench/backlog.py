"""The backlog: a raw loop, then `reorg-tui --once`, on fresh copies of the same workload, in
alternating rounds; one table of medians."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reorg_tui.bench.daemon import argv, compile_package
from reorg_tui.bench.report import BenchFailed
from reorg_tui.bench.workload import generate, scratch, verify
from reorg_tui.engine.publish import read_state


@dataclass
class Result:
    name: str
    files: int
    seconds: float
    first_move: float | None = None
    drain_rate: float | None = None  # files/s from the first move to the last (start-up left out)
    peak_rss: int | None = None  # bytes
    cpu: float | None = None  # user + system seconds

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


def _dated_folders(dest: Path) -> Callable[[str], str]:
    """name -> its date folder, made the first time it is needed (as a careful script would)."""
    made: set[str] = set()

    def folder_for(name: str) -> str:
        folder = f"{dest}/{name[:4]}/{name[5:7]}/{name[8:10]}"
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        return folder

    return folder_for


def raw_rename_loop(src: Path, dest: Path) -> Result:
    """What a careful script would do: list once, make each folder once, rename."""
    started = time.perf_counter()
    folder_for = _dated_folders(dest)
    count = 0
    for entry in os.scandir(src):
        os.rename(entry.path, f"{folder_for(entry.name)}/{entry.name}")
        count += 1
    return Result("raw rename loop", count, time.perf_counter() - started)


def raw_copy_loop(src: Path, dest: Path) -> Result:
    """The plain cross-filesystem move: copy, fsync, rename into place, unlink the source."""
    started = time.perf_counter()
    folder_for = _dated_folders(dest)
    count = 0
    for entry in os.scandir(src):
        folder = folder_for(entry.name)
        tmp = f"{folder}/.{entry.name}.tmp"
        with open(entry.path, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        os.rename(tmp, f"{folder}/{entry.name}")
        os.unlink(entry.path)
        count += 1
    return Result("raw copy+fsync loop", count, time.perf_counter() - started)


def run_engine(src: Path, dest: Path, state: Path, count: int, progress: Progress) -> Result:
    """The whole `reorg-tui --once` process, start-up included, with its default settings (its
    text log, a line a file, goes to a file as under a supervisor). The figures come from the
    snapshot it publishes: about once a second for the progress bar, and at its exit for when its
    first and last file arrived."""
    dest.mkdir(parents=True, exist_ok=True)
    compile_package()
    task = progress.add_task("engine draining", total=count)
    log_path = state / "engine.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # children's totals: this run is the difference
    with open(log_path, "wb") as log:
        began = time.time()
        started = time.perf_counter()
        command = argv("--once", src, dest, state, log_format="text")
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        while proc.poll() is None:
            published = read_state(state / "st")
            progress.update(task, completed=published["snapshot"]["totals"]["moved"] if published else 0)
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchFailed(f"the engine exited with {proc.returncode}")
    final = read_state(state / "st")
    snap = final["snapshot"] if final else {}
    first, last = snap.get("first_move_at"), snap.get("last_move_at")
    progress.update(task, completed=snap.get("totals", {}).get("moved", 0))
    return Result(
        "reorg-tui --once",
        count,
        elapsed,
        first_move=None if first is None else max(0.0, first - began),
        drain_rate=(count - 1) / (last - first) if first is not None and last and last > first else None,
        peak_rss=child.ru_maxrss * 1024,
        cpu=child.ru_utime + child.ru_stime - before.ru_utime - before.ru_stime,
    )


def run(
    directory: Path | None,
    files: int,
    size: int,
    cross: Path | None,
    keep: bool,
    console: Console | None = None,
    rounds: int = 1,
) -> list[tuple[Result, Result]]:
    """The raw loop, then the engine, on fresh copies of the same workload, ``rounds`` times:
    (raw, engine) for each round. Rounds alternate the two, so a neighbour's burst on a shared
    machine weighs on both sides rather than on one."""
    console = console or Console(stderr=True)
    root = scratch(directory)
    other = scratch(cross) if cross else None
    dest_root = other or root
    results: list[tuple[Result, Result]] = []
    try:
        with Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            for n in range(1, rounds + 1):
                if n > 1:  # each round starts from an empty destination, as the first did
                    for leftover in ("raw-dest", "engine-dest"):
                        shutil.rmtree(dest_root / leftover)
                    for state in ("st", "q"):
                        shutil.rmtree(root / state, ignore_errors=True)
                generate(root / "raw-src", files, size, progress)
                raw = (raw_copy_loop if other else raw_rename_loop)(root / "raw-src", dest_root / "raw-dest")
                verify(dest_root / "raw-dest", files)
                generate(root / "engine-src", files, size, progress)
                engine = run_engine(root / "engine-src", dest_root / "engine-dest", root, files, progress)
                verify(dest_root / "engine-dest", files)
                results.append((raw, engine))
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
            if other:
                shutil.rmtree(other, ignore_errors=True)
    return results


def _median_of(values: list[float | None]) -> float | None:
    """The median of the figures a side reports (the raw loop reports no first move, say)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def table(rounds: list[tuple[Result, Result]], files: int, size: int, where: str) -> Table:
    """One row for the raw loop and one for the engine: each figure the median over the rounds
    (peak memory: the largest), the ratio the median of each round's own ratio."""
    ratios = [engine.rate / raw.rate if raw.rate else 0.0 for raw, engine in rounds]
    caption = (
        "reorg-tui runs as its own process with default settings (INFO logs, fsync, all checks); "
        "drain files/s counts from its first move to its last, start-up left out"
    )
    if len(rounds) > 1:
        caption += f"; medians of {len(rounds)} rounds, the ratio in each: " + ", ".join(
            f"{r:.2f}" for r in ratios
        )
    out = Table(
        title=f"{files:,} files of {size} B, {where}; every file verified at its destination", caption=caption
    )
    for column in ("run", "files/s", "ratio", "seconds", "first move", "drain files/s", "peak RSS", "CPU"):
        out.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for side, ratio in ((0, 1.0), (1, statistics.median(ratios))):
        runs = [pair[side] for pair in rounds]
        first = _median_of([r.first_move for r in runs])
        drain = _median_of([r.drain_rate for r in runs])
        cpu = _median_of([r.cpu for r in runs])
        seconds = statistics.median([r.seconds for r in runs])
        rss = max((r.peak_rss for r in runs if r.peak_rss is not None), default=None)
        out.add_row(
            runs[0].name,
            f"{statistics.median([r.rate for r in runs]):,.0f}",
            f"{ratio:.2f}",
            f"{seconds:.2f}",
            "-" if first is None else f"{first:.2f} s",
            "-" if drain is None else f"{drain:,.0f}",
            "-" if rss is None else f"{rss / 2**20:.0f} MiB",
            "-" if cpu is None else f"{cpu:.2f} s",
        )
    return out
