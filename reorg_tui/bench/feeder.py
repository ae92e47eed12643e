"""The writer: files arriving at a steady rate, as a producer makes them, from a process of its own
(in the measuring process it would compete for the GIL and fall behind the rate).

    python -m reorg_tui.bench.feeder FOLDER RATE TOTAL [CLOSED_JSON]

TOTAL 0 writes until killed. With CLOSED_JSON, it writes there each file's close time at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from reorg_tui.bench.workload import file_name


def start(
    folder: Path, rate: float, total: int, closed: Path | None = None, *, capture_errors: bool = False
) -> subprocess.Popen[bytes]:
    """The writer, started; ``capture_errors`` pipes its stderr (a few lines at most: its error)."""
    argv = [sys.executable, "-m", "reorg_tui.bench.feeder", str(folder), str(rate), str(total)]
    return subprocess.Popen(
        argv + ([str(closed)] if closed else []), stderr=subprocess.PIPE if capture_errors else None
    )


def feed(folder: str, rate: float, total: int) -> dict[str, float]:
    closed, started, i = {}, time.time(), 0
    while not total or i < total:
        pause = started + i / rate - time.time()
        if pause > 0:
            time.sleep(pause)
        name = file_name(i)
        with open(f"{folder}/{name}", "wb") as handle:
            handle.write(b"x" * 100)
        closed[name] = time.time()
        i += 1
    return closed


if __name__ == "__main__":
    stamps = feed(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
    if len(sys.argv) > 4:
        with open(sys.argv[4], "w") as out:
            json.dump(stamps, out)
