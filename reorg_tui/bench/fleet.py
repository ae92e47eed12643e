"""--fleet N: the fleet's throughput with 1, 2 and N instances on one backlog, side by side with
the single-host daemon's on the same backlog, in one run.

Each side moves its own copy of one deterministic backlog (in ``FOLDERS`` source subfolders,
``--recursive``) from a fresh source folder, so its rows are its own in the coordinator. A side's
time runs from the start of its processes until every file is done (the fleet: its rows done; the
single host: ``--once`` ends), start-up included on both sides. Then every file is checked at its
target and, for the fleet, the rows done counted: a figure is given only if nothing was lost.

The coordinator is ``--coordinator URL`` (the bench's rows are removed from it after), or a
PostgreSQL the bench starts itself with ``pgserver`` where that is installed (the test extra).
On one machine the point is that throughput does not fall as instances are added and nothing is
lost, not a speed-up: the instances share its cores and its one filesystem.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from reorg_tui.bench.daemon import argv, compile_package
from reorg_tui.bench.report import BenchFailed, Figure
from reorg_tui.bench.workload import file_name, generate, scratch, target_of
from reorg_tui.config import ConfigError
from reorg_tui.engine.ledger_pg import CoordinatorDown, PgLedger, check_url

FOLDERS = 8
TIMEOUT = 600.0  # seconds a side may take before the bench gives up on it


def measure(
    directory: Path | None, instances: int, files: int, url: str | None, console: Console
) -> list[Figure]:
    if url:
        check_url(url)
    compile_package()
    counts = sorted({1, 2, instances})
    with _coordinator(url) as coordinator:
        root = scratch(directory)
        try:
            figures = [Figure("files", float(files))]
            seconds = _single_host(root / "single", files, console)
            figures.append(Figure("single host files/s", files / seconds))
            for count in counts:
                seconds = _fleet(root / f"fleet{count}", files, count, coordinator, console)
                figures.append(Figure(f"fleet of {count} files/s", files / seconds))
        finally:
            shutil.rmtree(root, ignore_errors=True)
            _forget(coordinator, root)
    return figures


def _backlog(folder: Path, files: int, console: Console) -> Path:
    """The backlog (the other benches' names and bytes), spread over FOLDERS source subfolders."""
    src = folder / "src"
    with Progress(console=console, transient=True) as progress:
        generate(src / "all", files, 100, progress)
    for part in range(FOLDERS):
        (src / f"in{part}").mkdir()
    for i in range(files):
        name = file_name(i)
        (src / "all" / name).rename(src / f"in{i % FOLDERS}" / name)
    (src / "all").rmdir()
    return src


def _single_host(folder: Path, files: int, console: Console) -> float:
    src = _backlog(folder, files, console)
    (folder / "dest").mkdir()
    console.print(f"single host: {files:,} files...")
    started = time.monotonic()
    done = subprocess.run(
        [*argv("--once", src, folder / "dest", folder), "--recursive"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise BenchFailed(f"the single-host run ended with exit code {done.returncode}")
    _verify(folder / "dest", files)
    return seconds


def _fleet(folder: Path, files: int, count: int, url: str, console: Console) -> float:
    src = _backlog(folder, files, console)
    dest = folder / "dest"
    dest.mkdir()
    console.print(f"fleet of {count}: {files:,} files...")
    ledger = PgLedger(url, owner="bench", identity=str(src.resolve()))
    procs = []
    started = time.monotonic()
    for i in range(count):
        command = argv("--headless", src, dest, folder / f"i{i}")
        command += ["--recursive", "--coordinator", url, "--poll-interval", "1"]
        procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        while (done := ledger.counts().get("done", 0)) < files:
            if time.monotonic() - started > TIMEOUT or any(p.poll() is not None for p in procs):
                raise BenchFailed(f"the fleet of {count} did not finish: {done} of {files} done")
            time.sleep(0.05)
        seconds = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        ledger.close()
    _verify(dest, files)
    return seconds


def _verify(dest: Path, files: int) -> None:
    missing = [file_name(i) for i in range(files) if not target_of(dest, file_name(i)).is_file()]
    if missing:
        raise BenchFailed(f"{len(missing)} file(s) did not arrive, the first {missing[0]}")


@contextlib.contextmanager
def _coordinator(url: str | None) -> Iterator[str]:
    """The URL given, or a PostgreSQL of the bench's own (pgserver), stopped and removed after."""
    if url:
        yield url
        return
    try:
        import pgserver
    except ImportError:
        raise ConfigError(
            "bench --fleet: give --coordinator URL (a database the bench may write into; its rows "
            "are removed after), or install pgserver to have the bench start one"
        ) from None
    folder = Path(tempfile.mkdtemp(prefix="reorg-bench-pg-"))
    server = pgserver.get_server(folder / "data", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _forget(url: str, root: Path) -> None:
    """The bench's rows out of a coordinator it was given (its sources are below ``root``)."""
    ledger = PgLedger(url, owner="bench", identity="")
    try:
        ledger.forget_sources(str(root.resolve()))
    except CoordinatorDown:
        pass
    finally:
        ledger.close()
