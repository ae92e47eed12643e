"""Starting reorg-tui as its own process, as an installed one starts, and reading what it logs.

The daemon logs JSON (``--log-format json``): one object a line, with the keys the README
documents (``time``, ``level``, ``event``, ``message``, ``file``, ``destination``...). The bench
reads records by those keys, never by the wording of a message.
"""

from __future__ import annotations

import calendar
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def compile_package() -> None:
    """Start the engine as an installed one starts: with this package's bytecode compiled (a wheel
    install compiles it; an editable install under PYTHONDONTWRITEBYTECODE would compile every
    module at every start, which is not the tool's start-up). Written to __pycache__ as usual."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parents[1]), quiet=1)


def argv(mode: str, src: Path, dest: Path, state: Path, log_format: str = "json") -> list[str]:
    """`reorg-tui MODE` (--once, --headless) from ``src`` to ``dest``, its quarantine and state
    folder under ``state``, logging JSON (or as told); otherwise its default settings. The
    quarantine is made here: one that is named must exist."""
    (state / "q").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "reorg_tui", mode, "--log-format", log_format, "-s", str(src)]
    command += ["-d", str(dest), "--quarantine", str(state / "q"), "--state-dir", str(state / "st")]
    return command


def start_headless(src: Path, dest: Path, state: Path) -> subprocess.Popen[bytes]:
    """A running daemon, its log on a pipe (``proc.stderr``)."""
    dest.mkdir(parents=True, exist_ok=True)
    compile_package()
    return subprocess.Popen(
        argv("--headless", src, dest, state), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a supervisor stops it, and wait for it to drain."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def records(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The log's records, in order; a line that is not a JSON object (a crash's traceback) is skipped."""
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def parse_time(stamp: str) -> float:
    """A record's ``time`` (UTC, 2026-11-29T12:00:00.123Z) as unix time."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac or 0}")
