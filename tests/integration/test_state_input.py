"""Every file in the state folder and the quarantine is input: valid JSON (or a valid SQLite
row) of the wrong shape is set aside with a warning; the daemon starts, runs and moves files."""

from __future__ import annotations

import json
import sqlite3
import threading

from reorg_tui.engine.ledger import LEDGER_NAME
from tests.conftest import OLD, cli, make_settings, run_once, running, wait_for, write


def _wrong_typed_state(settings) -> str:
    """A state folder and quarantine where every kind of state holds a field of the wrong type.
    Returns the id of an item whose record says ``"size": "12"``."""
    write(settings.source / "2024-02-30_bad.txt", b"bad", OLD)
    write(settings.source / "2024-02-31_worse.txt", b"worse", OLD)
    run_once(settings)
    items = sorted(p for p in settings.quarantine.glob("*.json"))
    assert len(items) == 2
    record = json.loads(items[0].read_text())
    items[0].write_text(json.dumps({**record, "size": "12"}))
    db = sqlite3.connect(settings.state_dir / LEDGER_NAME)
    with db:
        db.execute("UPDATE quarantine SET size = '12', attempts = 'three' WHERE id = ?", (record["id"],))
        db.execute(
            "INSERT INTO retries VALUES (?, ?, ?, ?, ?, ?)", (b"2024-01-01_r.txt", "x", "soon", 5, 7, "then")
        )
        db.execute(
            "INSERT INTO transfers (kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target, started)"
            " VALUES ('deliver', 'intent', 'a', 'b', 'c', 1, 1, 'not bytes', x'00', 'then')"
        )
        db.execute("INSERT INTO open_transfers SELECT max(id) FROM transfers")
    db.close()
    (settings.state_dir / "snapshot.json").write_text(
        json.dumps({"pid": "1", "published_at": [], "snapshot": 3})
    )
    (settings.state_dir / "lock.json").write_text(json.dumps({"pid": "me", "started": {}}))
    return record["id"]


def test_wrong_types_in_every_state_file_never_stop_a_start_a_listing_or_status(tmp_path):
    settings = make_settings(tmp_path)
    bad_id = _wrong_typed_state(settings)
    write(settings.source / "2024-03-01_new.txt", b"new", OLD)
    env = {
        "REORG_SOURCE": str(settings.source),
        "REORG_DEST": str(settings.dest),
        "REORG_QUARANTINE": str(settings.quarantine),
        "REORG_STATE_DIR": str(settings.state_dir),
    }
    status = cli("status", env=env)
    assert status.returncode == 2 and "Traceback" not in status.stderr, status
    listed = cli("quarantine", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    ran = cli("--once", "--settle", "0", env=env)
    assert ran.returncode == 0, ran.stderr  # was 70
    assert "Traceback" not in ran.stderr and "internal error" not in ran.stderr
    assert "set aside" in ran.stderr  # the retry row, with why
    assert (settings.dest / "2024/03/01/2024-03-01_new.txt").read_bytes() == b"new"
    listed = json.loads(cli("quarantine", "list", "--json", env=env).stdout)
    assert len(listed) == 2 and bad_id in [r["id"] for r in listed]  # its record rewritten from its file
    shown = cli("quarantine", "show", bad_id, env=env)
    assert shown.returncode == 0, shown.stderr


def test_a_record_of_the_wrong_shape_planted_while_running_does_not_stop_the_scanner(tmp_path):
    """Was: a record with "size": "12" killed the scanner thread at its next count of the
    quarantine; after an inotify overflow most of 20,000 files were stranded."""
    settings = make_settings(tmp_path)
    with running(settings) as (engine, _):
        item = "20240101T000000-0badf00d"
        write(settings.quarantine / item / "x.txt", b"x")
        (settings.quarantine / f"{item}.json").write_text(
            json.dumps({"id": item, "name": "x.txt", "original": "", "intended": None, "reason": "r",
                        "attempts": 0, "errors": [], "quarantined_at": 0, "first_failed_at": 0, "size": "12"})
        )  # fmt: skip
        for i in range(2000):
            write(settings.source / f"2024-01-{1 + i % 28:02d}_f{i:04d}.txt", b"%d" % i, OLD)
        engine._request_scan()  # what an overflow of the watcher's queue asks for
        wait_for(lambda: engine.snapshot().totals.moved == 2000, timeout=60, what="every file to move")
        assert "reorg-scan" in [t.name for t in threading.enumerate()]
        assert engine.snapshot().quarantine.count == 0  # the planted item is not counted


DEEP = b"[" * 5000  # valid JSON's start, nested past the parser's limit: a RecursionError, not a ValueError


def test_json_nested_too_deep_in_any_state_file_is_set_aside_never_a_crash(tmp_path):
    settings = make_settings(tmp_path)
    _wrong_typed_state(settings)
    env = {
        "REORG_SOURCE": str(settings.source),
        "REORG_DEST": str(settings.dest),
        "REORG_QUARANTINE": str(settings.quarantine),
        "REORG_STATE_DIR": str(settings.state_dir),
    }
    [first, _] = sorted(settings.quarantine.glob("*.json"))
    first.write_bytes(DEEP)  # a record
    (settings.state_dir / "retry.json").write_bytes(DEEP)  # the queue of versions before the ledger
    (settings.state_dir / "snapshot.json").write_bytes(DEEP)
    with sqlite3.connect(settings.state_dir / LEDGER_NAME) as db:
        db.execute("UPDATE quarantine SET errors = ?", (DEEP.decode(),))
    db.close()
    for args in (("quarantine", "list"), ("quarantine", "list", "--json"), ("status",)):
        done = cli(*args, env=env)
        assert done.returncode in (0, 2) and "internal error" not in done.stderr, (args, done.stderr)
    ran = cli("--once", "--settle", "0", env=env)
    assert ran.returncode == 0 and "internal error" not in ran.stderr, ran.stderr
    assert (settings.state_dir / "retry.corrupt").read_bytes() == DEEP  # set aside, kept
    plan = tmp_path / "plan.json"
    plan.write_bytes(DEEP)
    applied = cli("apply", str(plan), env=env)
    assert applied.returncode == 2 and "internal error" not in applied.stderr, applied.stderr
