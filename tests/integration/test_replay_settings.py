"""The retry queue is replayed through today's settings (#14): a file that the current --ignore,
--pattern or --recursive no longer takes is dropped from the queue with a log line, never moved,
and never keeps `--once` waiting.

A real daemon queues a real retry: the file's destination folder is immutable (chattr +i holds
even for root), so its rename fails with EPERM and is retried every second. The daemon is
stopped, the folder made writable again, and `--once` started with other settings: a retry due
at once would move the file if the queue were replayed blindly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reorg_tui.engine.publish import read_state
from tests.conftest import OLD, cli, unmark, wait_for, write

PATTERN_DMY = r"^(?P<day>[0-9]{2})-(?P<month>[0-9]{2})-(?P<year>[0-9]{4})_"
CASES = {
    # name: (file below the source, settings of the first run, settings of the second)
    "ignore": ("2024-05-05_upload.part", ["--ignore", ".*"], []),  # the default ignores *.part
    "pattern": ("2024-05-05_a.txt", [], ["--pattern", PATTERN_DMY]),
    "recursive": ("sub/2024-05-05_a.txt", ["--recursive"], []),
    "ignored-folder": ("drafts/2024-05-05_a.txt", ["--recursive"], ["--recursive", "--ignore", "drafts"]),
}
RETRY_EVERY_SECOND = ["--retry-base-delay", "1", "--retry-max-delay", "1", "--max-retries", "1000"]


def _args(root: Path) -> list[str]:
    return ["-s", str(root / "src"), "-d", str(root / "dst"), "--quarantine", str(root / "q"),
            "--state-dir", str(root / "state"), "--settle", "0", "--log-format", "json"]  # fmt: skip


def _queue_a_retry(root: Path, rel: str, first: list[str], immutable) -> Path:
    for name in ("src", "dst", "q"):
        (root / name).mkdir()
    path = write(root / "src" / rel, b"bytes of " + rel.encode(), OLD)
    folder = root / "dst/2024/05/05"
    folder.mkdir(parents=True)
    immutable(folder)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", *_args(root), *RETRY_EVERY_SECOND, *first],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: ((read_state(root / "state") or {}).get("snapshot") or {}).get("queues", {}).get("retry"),
            what="the retry to be queued",
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert path.exists()
    unmark(folder)  # a retry would now succeed: only the settings stand in its way
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_a_queued_retry_that_todays_settings_do_not_take_is_dropped_and_never_moved(
    tmp_path, case, immutable
):
    rel, first, second = CASES[case]
    path = _queue_a_retry(tmp_path, rel, first, immutable)
    before = os.lstat(path)

    result = cli("--once", *_args(tmp_path), *RETRY_EVERY_SECOND, *second, timeout=30)

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    dropped = [r for r in records if r["event"] == "retry_dropped"]
    assert len(dropped) == 1, result.stderr
    assert (
        dropped[0]["file"] == str(tmp_path / "src" / rel) and "stays in the source" in dropped[0]["message"]
    )
    after = os.lstat(path)  # the same file, untouched
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert path.read_bytes() == b"bytes of " + rel.encode()
    assert not any((tmp_path / "dst").rglob(Path(rel).name))
    # Dropped from the ledger too: the next start has nothing to say about it.
    again = cli("--once", *_args(tmp_path), *RETRY_EVERY_SECOND, *second, timeout=30)
    assert again.returncode == 0 and "retry_dropped" not in again.stderr, again.stderr
    assert path.exists()


def test_a_queued_retry_that_todays_settings_still_take_is_retried(tmp_path, immutable):
    """The control: the same queue, the same settings, and the file moves on its retry."""
    path = _queue_a_retry(tmp_path, "2024-05-05_a.txt", [], immutable)
    result = cli("--once", *_args(tmp_path), *RETRY_EVERY_SECOND, timeout=30)
    assert result.returncode == 0, result.stderr
    assert not path.exists()
    assert (tmp_path / "dst/2024/05/05/2024-05-05_a.txt").read_bytes() == b"bytes of 2024-05-05_a.txt"
