"""The files a benchmark moves: deterministic names spread over a year, and the proof they arrived."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from reorg_tui.bench.report import BenchFailed

if TYPE_CHECKING:
    from rich.progress import Progress

DAYS = 365


def file_name(i: int) -> str:
    day = time.gmtime(1_704_067_200 + (i % DAYS) * 86_400)  # 2024-01-01 onwards
    return f"{day.tm_year:04d}-{day.tm_mon:02d}-{day.tm_mday:02d}_f{i:08d}.dat"


def target_of(dest: Path, name: str) -> Path:
    return dest / name[:4] / name[5:7] / name[8:10] / name


def scratch(directory: Path | None) -> Path:
    """A new folder for one run's workload, in ``directory`` (default: the temporary folder)."""
    return Path(tempfile.mkdtemp(prefix="reorg-bench-", dir=directory))


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


def verify(dest: Path, count: int) -> None:
    missing = [file_name(i) for i in range(count) if not target_of(dest, file_name(i)).is_file()]
    if missing:
        raise BenchFailed(f"{len(missing)} file(s) did not arrive, the first {missing[0]}")
