"""`reorg-tui bench`: the engine against a raw rename loop, in the same run, on the same filesystem.

Speed is reported as a ratio to the raw loop measured minutes apart on the same machine, never as
an absolute number: machines (and their neighbours) differ.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reorg_tui.engine.errors import ExitCode, ReorgError

DAYS = 365


class BenchFailed(ReorgError):
    """The measured side did not do its work (a file did not arrive): there is no figure to give."""

    exit_code = ExitCode.LEFT_BEHIND

    def __init__(self, why: str) -> None:
        super().__init__(f"bench: {why}")


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


def file_name(i: int) -> str:
    day = time.gmtime(1_704_067_200 + (i % DAYS) * 86_400)  # 2024-01-01 onwards
    return f"{day.tm_year:04d}-{day.tm_mon:02d}-{day.tm_mday:02d}_f{i:08d}.dat"


def target_of(dest: Path, name: str) -> Path:
    return dest / name[:4] / name[5:7] / name[8:10] / name


def generate(folder: Path, count: int, size: int, progress: Progress) -> None:
    """A deterministic backlog: the same names and bytes every run; old mtimes (ready at once)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = (b"reorg-tui benchmark " * (size // 20 + 1))[:size]
    task = progress.add_task(f"generating {folder.name}", total=count)
    old = time.time() - 86_400
    for i in range(count):
        path = os.path.join(folder, file_name(i))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        if payload:
            os.write(fd, payload)
        os.close(fd)
        os.utime(path, (old, old))
        if i % 2000 == 0:
            progress.update(task, completed=i)
    progress.update(task, completed=count)


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


MOVED = b" INFO    moved "  # what a moved file's line holds in the text log (and no other line)


def compile_package() -> None:
    """Start the engine as an installed one starts: with this package's bytecode compiled (a wheel
    install compiles it; an editable install under PYTHONDONTWRITEBYTECODE would compile every
    module at every start, which is not the tool's start-up). Written to __pycache__ as usual."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent), quiet=1)


def run_engine(
    src: Path, dest: Path, state: Path, count: int, progress: Progress, extra: list[str]
) -> Result:
    """The whole `reorg-tui --once` process, start-up included, with its default settings."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "reorg_tui", "--once", "-s", str(src), "-d", str(dest)]
    argv += ["--quarantine", str(state / "q"), "--state-dir", str(state / "st"), *extra]
    compile_package()
    task = progress.add_task("engine draining", total=count)
    stamps: list[bytes] = []  # the log stamps of the first and of the latest moved line
    moved = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # children's totals: this run is the difference
    began = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def read() -> None:
        # Large reads, counted with bytes.count: parsing 100,000 lines here would take CPU from
        # the engine on a small machine. (The count is for the progress bar; verify() is the proof.)
        nonlocal moved
        assert proc.stderr is not None
        fd, tail = proc.stderr.fileno(), b""
        while chunk := os.read(fd, 1 << 16):
            text = tail + chunk
            found = text.count(MOVED)
            if found:
                # Text lines begin with their UTC stamp: "2026-11-29T12:00:00.123Z INFO    moved ...".
                head = text.rfind(b"\n", 0, text.find(MOVED)) + 1
                last = text.rfind(b"\n", 0, text.rfind(MOVED)) + 1
                stamps[:] = [stamps[0] if stamps else text[head : head + 24], text[last : last + 24]]
            moved += found
            cut = text.rfind(b"\n") + 1
            tail = text[cut:]
            moved -= tail.count(MOVED)  # counted again next time

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        progress.update(task, completed=moved)
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    reader.join(timeout=5)
    progress.update(task, completed=moved)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchFailed(f"the engine exited with {proc.returncode}")
    first = last = None
    if stamps:
        first, last = (_parse_time(s.decode()) for s in stamps)
    return Result(
        "reorg-tui --once",
        count,
        elapsed,
        first_move=None if first is None else max(0.0, first - began),
        drain_rate=(count - 1) / (last - first) if first is not None and last and last > first else None,
        peak_rss=child.ru_maxrss * 1024,
        cpu=child.ru_utime + child.ru_stime - before.ru_utime - before.ru_stime,
    )


def verify(dest: Path, count: int) -> None:
    missing = [file_name(i) for i in range(count) if not target_of(dest, file_name(i)).is_file()]
    if missing:
        raise BenchFailed(f"{len(missing)} file(s) did not arrive, the first {missing[0]}")


def run_bench(
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
    root = Path(tempfile.mkdtemp(prefix="reorg-bench-", dir=directory))
    other = Path(tempfile.mkdtemp(prefix="reorg-bench-", dir=cross)) if cross else None
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
                engine = run_engine(root / "engine-src", dest_root / "engine-dest", root, files, progress, [])
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


def _headless(src: Path, dest: Path, state: Path, *extra: str) -> subprocess.Popen[bytes]:
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "reorg_tui", "--headless", "--log-format", "json", "-s", str(src)]
    argv += ["-d", str(dest), "--quarantine", str(state / "q"), "--state-dir", str(state / "st"), *extra]
    compile_package()
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


_MOVED_JSON = re.compile(
    rb'^\{"time": "([^"]+)", "level": "info", "event": "moved".*?"destination": "([^"]*)"', re.M
)


_PAUSED_JSON = re.compile(rb'"event": "paused", "message": "([^"]*)"')


def _parse_time(stamp: str) -> float:
    """The log's UTC stamp (2026-11-29T12:00:00.123Z) as unix time."""
    import calendar

    whole, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac or 0}")


_FEEDER = """
import json, sys, time
from reorg_tui.bench import file_name
folder, rate, total = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
closed, started, i = {}, time.time(), 0
while not total or i < total:  # total 0: until killed
    pause = started + i / rate - time.time()
    if pause > 0:
        time.sleep(pause)
    name = file_name(i)
    with open(f"{folder}/{name}", "wb") as handle:
        handle.write(b"x" * 100)
    closed[name] = time.time()
    i += 1
if len(sys.argv) > 4:
    with open(sys.argv[4], "w") as f:
        json.dump(closed, f)
"""


def watch_latency(directory: Path | None, rate: float, seconds: float, console: Console) -> dict[str, float]:
    """Files arriving at ``rate`` a second, the daemon at its default settings: the time from a
    file being ready (its writer's close plus the settle time, as the daemon defines ready: held
    still that long) to its move; and, for scale, from the close itself."""
    import json

    from reorg_tui.config import FIELDS

    settle = float(FIELDS["settle"].default)

    root = Path(tempfile.mkdtemp(prefix="reorg-bench-", dir=directory))
    src, dest = root / "src", root / "dest"
    src.mkdir()
    closed: dict[str, float] = {}
    moved: dict[str, float] = {}
    paused: list[bytes] = []  # the daemon's "intake paused" lines, should any come
    proc = _headless(src, dest, root)
    try:
        time.sleep(1.5)  # start-up is not what this measures

        def read() -> None:
            # Large reads and one regex per chunk, in C: parsing every line as JSON here would
            # take CPU from the daemon it measures, and a slow reader throttles the daemon's log.
            assert proc.stderr is not None
            fd, tail = proc.stderr.fileno(), b""
            while chunk := os.read(fd, 1 << 16):
                text = tail + chunk
                cut = text.rfind(b"\n") + 1
                text, tail = text[:cut], text[cut:]
                for stamp, destination in _MOVED_JSON.findall(text):
                    moved[os.path.basename(destination.decode())] = _parse_time(stamp.decode())
                paused.extend(_PAUSED_JSON.findall(text))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        total = int(rate * seconds)
        started = time.time()
        # The writer is a process of its own (as a producer is): in this one it would compete
        # with the log reader for the GIL and fall behind the rate. It reports each close time.
        stamps = root / "closed.json"
        feeder = subprocess.Popen(
            [sys.executable, "-c", _FEEDER, str(src), str(rate), str(total), str(stamps)],
            stderr=subprocess.PIPE,  # a few lines at most: its error, should it fail
        )
        with Progress(
            TextColumn("feeding"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
        ) as bar:
            task = bar.add_task("feed", total=total)
            while feeder.poll() is None:
                bar.update(task, completed=min(total, int((time.time() - started) * rate)))
                time.sleep(0.2)
        if feeder.returncode != 0:
            assert feeder.stderr is not None
            said = feeder.stderr.read().decode(errors="replace").strip().splitlines()
            raise BenchFailed(f"the writer stopped: {said[-1] if said else f'exit {feeder.returncode}'}")
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
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    delays = sorted(moved[n] - closed[n] for n in closed if n in moved)
    if len(delays) < total:
        why = (
            f"; the daemon paused intake ({paused[-1].decode()}): the folder given to --dir is short "
            "of space or of inodes"
            if paused
            else ""
        )
        raise BenchFailed(f"{total - len(delays)} file(s) were not moved within 30 s of the end{why}")
    return {
        "files": float(total),
        "achieved rate": total / fed_for,
        "settle": settle,
        "p50 after ready": delays[len(delays) // 2] - settle,
        "p95 after ready": delays[int(len(delays) * 0.95)] - settle,
        "max after ready": delays[-1] - settle,
        "p50 after close": delays[len(delays) // 2],
    }


def idle_cpu(directory: Path | None, quiet_files: int, seconds: float, console: Console) -> dict[str, float]:
    """CPU used by a running daemon with nothing to do, over a large folder of names it ignores."""
    import psutil

    root = Path(tempfile.mkdtemp(prefix="reorg-bench-", dir=directory))
    src = root / "src"
    src.mkdir()
    for i in range(quiet_files):
        (src / f"unrelated-{i:08d}.txt").touch()
    # A quiet folder: nothing changed in it for a while (its mtime says so).
    os.utime(src, ns=(time.time_ns(), time.time_ns() - 60 * 10**9))
    proc = _headless(src, root / "dest", root)
    try:
        time.sleep(3)  # the first full scan and start-up
        ps = psutil.Process(proc.pid)
        before = ps.cpu_times()
        console.print(f"measuring idle CPU for {seconds:.0f} s over {quiet_files:,} ignored names...")
        time.sleep(seconds)
        after = ps.cpu_times()
        from reorg_tui.engine.publish import read_state

        state = read_state(root / "st") or {}
        listing = float(state.get("snapshot", {}).get("last_scan_seconds", 0.0))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    used = (after.user - before.user) + (after.system - before.system)
    # Not in the window: the full listing the daemon makes every FULL_SCAN_EVERY polls even of an
    # unchanged folder. Spread over its period, it adds this much.
    from reorg_tui.config import FIELDS
    from reorg_tui.engine.intake import FULL_SCAN_EVERY

    period = FULL_SCAN_EVERY * float(FIELDS["poll_interval"].default)
    return {
        "quiet files": float(quiet_files),
        "seconds": seconds,
        "cpu seconds": used,
        "percent of a core": 100 * used / seconds,
        "full listing seconds": listing,
        "with listings, percent": 100 * (used / seconds + listing / period),
    }


def dashboard_load(directory: Path | None, rate: float, seconds: float, console: Console) -> dict[str, float]:
    """The real dashboard hosting the engine while files arrive at ``rate`` a second: how often
    the panes refresh, and how long a key press takes to be answered (Textual's Pilot)."""
    import asyncio

    from reorg_tui.config import FIELDS, Settings
    from reorg_tui.engine.engine import Engine
    from reorg_tui.tui.app import ReorgApp
    from reorg_tui.tui.bridge import EngineHost

    root = Path(tempfile.mkdtemp(prefix="reorg-bench-", dir=directory))
    for name in ("src", "dest"):
        (root / name).mkdir()
    settings = Settings(source=root / "src", dest=root / "dest", quarantine=root / "q", state_dir=root / "st")
    app = ReorgApp(EngineHost(Engine(settings)))
    # The feeder is its own process: in this one it would compete with the app for the GIL.
    feeder: subprocess.Popen[bytes] | None = None

    figures: dict[str, float] = {}

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            nonlocal feeder
            await pilot.pause(1.0)
            feeder = subprocess.Popen([sys.executable, "-c", _FEEDER, str(root / "src"), str(rate), "0"])
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
                latencies.append(app.key_answered_at - pressed)  # stamped by the app's action
                if type(app.screen).__name__ != "HelpScreen":
                    raise RuntimeError("the help screen did not open")
                await pilot.press("escape")
                await pilot.pause(0.5)
            span = time.perf_counter() - began
            figures["files moved per second"] = (app.host.snapshot().totals.moved - first_moved) / span
            figures["refreshes per second"] = (app.refreshes - first_refreshes) / span
            latencies.sort()
            figures["key presses"] = float(len(latencies))
            figures["key p50"] = latencies[len(latencies) // 2]
            figures["key p95"] = latencies[int(len(latencies) * 0.95)]
            if feeder is not None:
                feeder.kill()
            await pilot.press("q")

    console.print(f"dashboard under {rate:,.0f} files/s for {seconds:.0f} s...")
    try:
        asyncio.run(drive())
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()
        shutil.rmtree(root, ignore_errors=True)
    return figures
