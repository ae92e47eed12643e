"""State files with values of the right type but out of range (from the attack on #14): a count
SQLite cannot hold, a time C's time_t cannot hold, a retry due in the year 10**300. Each is set
aside or bounded, never an exit 70 nor a --once that never ends; the file stays in one place."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

OLD = 1_600_000_000


def run(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "reorg_tui", *args], capture_output=True, text=True, timeout=timeout
    )


def plant(quarantine, item_id, name, **fields):
    (quarantine / item_id).mkdir(parents=True)
    (quarantine / item_id / name).write_bytes(b"held")
    record = {
        "id": item_id,
        "name": name,
        "original": name,
        "intended": None,
        "reason": "planted",
        "attempts": 1,
        "errors": [],
        "quarantined_at": OLD,
        "first_failed_at": OLD,
        "size": 4,
    }
    record.update(fields)
    (quarantine / f"{item_id}.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    "fields",
    [{"size": 10**30}, {"attempts": 10**30}, {"quarantined_at": 1e20}, {"quarantined_at": float("inf")}],
    ids=["size", "attempts", "time", "infinity"],
)
def test_a_record_out_of_range_is_never_an_exit_70(tmp_path, fields):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    quarantine = dest / "_quarantine"
    item = "20240101T000000-00000009"
    plant(quarantine, item, "a.txt", **fields)
    (src / "2024-01-02_b.txt").write_bytes(b"b")
    listed = run("quarantine", "list", "-d", str(dest))
    assert listed.returncode in (0, 1), listed.stderr
    assert "internal error" not in listed.stderr
    shown = run("quarantine", "show", item, "-d", str(dest))
    assert shown.returncode != 70 and "internal error" not in shown.stderr, shown.stderr
    once = run("--once", "-s", str(src), "-d", str(dest), "--state-dir", str(tmp_path / "st"))
    assert once.returncode == 0, once.stderr[-2000:]
    assert (dest / "2024" / "01" / "02" / "2024-01-02_b.txt").read_bytes() == b"b"
    held = [p for p in quarantine.rglob("a.txt")]
    assert len(held) == 1 and held[0].read_bytes() == b"held"  # still one place: the quarantine


@pytest.mark.parametrize("next_try", [1e308, 1e10])
def test_a_retry_due_far_ahead_never_holds_once_for_ever(tmp_path, next_try):
    """A retry row planted (or saved under a long delay) far ahead waits at most today's
    --retry-max-delay; 1e308 is also out of the range this version writes, and set aside."""
    src, dest, state = tmp_path / "src", tmp_path / "dest", tmp_path / "st"
    src.mkdir()
    dest.mkdir()
    args = ("-s", str(src), "-d", str(dest), "--state-dir", str(state))
    assert run("--once", *args).returncode == 0  # makes the ledger
    (src / "2024-01-03_b.txt").write_bytes(b"b")
    db = sqlite3.connect(state / "ledger.sqlite3")
    with db:
        db.execute(
            "INSERT INTO retries (path, attempts, next_try, last_error, errors, first_failed)"
            " VALUES (?, 1, ?, ?, '[]', ?)",
            (b"2024-01-03_b.txt", next_try, b"planted", OLD),
        )
    db.close()
    once = run("--once", *args, "--retry-max-delay", "2", timeout=60)
    assert once.returncode == 0, once.stderr[-2000:]
    assert (dest / "2024" / "01" / "03" / "2024-01-03_b.txt").read_bytes() == b"b"
    assert not (src / "2024-01-03_b.txt").exists()
