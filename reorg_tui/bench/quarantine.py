"""--quarantine N: how long ``reorg-tui quarantine list`` takes over N quarantined files, cold.

N items are written as the store writes them (a record, then the file in its folder), without
the store's fsyncs, so that 50,000 take seconds to make. A ``--once`` run on an empty source then
indexes them from their records (the path a lost state folder takes; its time is a figure too).
Then ``quarantine list`` runs as its own process, start-up included, twice each way, alternating:
with the ledger (found from the source, as an operator runs it) and from the records alone (no
source given: the path before the ledger, and the fallback). "Cold" means the page cache was
dropped before each run (``/proc/sys/vm/drop_caches``, as root); where it cannot be, the figures
say "warm". The ratio between the two ways is the figure to compare across machines.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from reorg_tui.bench.daemon import compile_package
from reorg_tui.bench.report import BenchFailed, Figure
from reorg_tui.bench.workload import scratch

ROUNDS = 2


def measure(directory: Path | None, count: int, console: Console, *, keep: bool = False) -> list[Figure]:
    root = scratch(directory)
    src, dest, quarantine, state = (root / name for name in ("src", "dest", "q", "st"))
    for folder in (src, dest, quarantine):
        folder.mkdir()
    try:
        compile_package()
        console.print(f"writing {count:,} quarantined files with their records...")
        fill(quarantine, count)
        where = ["--source", str(src), "--quarantine", str(quarantine), "--state-dir", str(state)]
        cold = _drop_caches()
        started = time.perf_counter()
        indexed = _run(["--once", "--dest", str(dest), *where])
        rebuild = time.perf_counter() - started
        if indexed.returncode != 0:
            raise BenchFailed(f"indexing the quarantine failed: {indexed.stderr.strip()[-300:]}")
        ways = {
            "ledger": ["quarantine", "list", *where],
            "records": ["quarantine", "list", "-q", str(quarantine)],
        }
        times: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(ROUNDS):
            for way, args in ways.items():
                cold = _drop_caches() and cold
                started = time.perf_counter()
                listed = _run(args)
                times[way].append(time.perf_counter() - started)
                if listed.returncode != 0 or f"{count} file(s)" not in listed.stdout[-200:]:
                    raise BenchFailed(f"`quarantine list` ({way}) did not list {count:,} files")
        cold = _drop_caches() and cold
        started = time.perf_counter()
        as_json = _run([*ways["ledger"], "--json"])
        json_seconds = time.perf_counter() - started
        if len(json.loads(as_json.stdout)) != count:
            raise BenchFailed("`quarantine list --json` did not list every file")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    how = "cold" if cold else "warm"
    ledger, records = (statistics.median(times[way]) for way in ways)
    # list: with the ledger, found from the source; from records: no source given (the fallback,
    # and every list before the ledger); reindex: a --once start that indexes every record.
    return [
        Figure("items", count),
        Figure(f"list ({how})", ledger, "s"),
        Figure(f"list --json ({how})", json_seconds, "s"),
        Figure(f"from records ({how})", records, "s"),
        Figure("ratio", records / ledger if ledger else 0.0, "x faster"),
        Figure(f"reindex ({how})", rebuild, "s"),
    ]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    return subprocess.run(
        [sys.executable, "-m", "reorg_tui", *args], capture_output=True, text=True, env=env, timeout=600
    )


def fill(root: Path, count: int) -> None:
    start = time.time() - 86_400
    for n in range(count):
        item_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(start + n)) + f"-{n:08x}"
        name = f"2024-02-30_f{n:08d}.dat"
        folder = root / item_id
        folder.mkdir()
        (folder / name).write_bytes(b"quarantined")
        record = {
            "id": item_id,
            "name": name,
            "original": f"/srv/inbox/{name}",
            "intended": None,
            "reason": "2024-02-30 is not a real date",
            "attempts": 1,
            "errors": ["2024-01-01T00:00:00Z 2024-02-30 is not a real date"],
            "quarantined_at": start + n,
            "first_failed_at": start + n,
            "size": 11,
        }
        (root / f"{item_id}.json").write_text(json.dumps(record, indent=1))


def _drop_caches() -> bool:
    """Empty the page cache (and the dentry and inode caches): the next run reads from disk."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as knob:
            knob.write("3\n")
    except OSError:
        return False
    return True
