"""The ledger's PostgreSQL backend against a real server: claims, fences, leases, the lister."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from reorg_tui.engine.ledger_pg import (
    CoordinatorDown,
    CoordinatorError,
    FileState,
    Finished,
    PgLedger,
    check_url,
    where,
)

AGREED = {"layout": "{year}/{month}/{day}", "pattern": "^x", "on_conflict": "rename"}


def ledger(url: str, owner: str, identity: str = "/share/inbox") -> PgLedger:
    pg = PgLedger(url, owner=owner, identity=identity)
    pg.open(AGREED)
    return pg


def files(tmp_path: Path, count: int, folders: int = 1) -> list[tuple[str, os.stat_result]]:
    out = []
    for i in range(count):
        rel = f"f{i % folders}/2024-01-01_{i}.txt"
        path = tmp_path / rel
        path.parent.mkdir(exist_ok=True)
        path.write_text(str(i))
        out.append((rel, os.lstat(path)))
    return out


def test_schema_is_made_once_and_each_file_is_one_row(database: str, tmp_path: Path) -> None:
    a, b = ledger(database, "a"), ledger(database, "b")  # the second finds the schema made
    listed = files(tmp_path, 50)
    assert a.publish(listed) == 50
    assert b.publish(listed) == 0  # the same files again (another scan, another lister): no new row
    assert a.counts() == {"ready": 50}
    a.close(), b.close()


def test_two_instances_never_claim_the_same_file(database: str, tmp_path: Path) -> None:
    a, b = ledger(database, "a"), ledger(database, "b")
    a.publish(files(tmp_path, 300, folders=6))
    got_a = a.claim(100, 0, 30.0)
    got_b = b.claim(1000, 0, 30.0)
    assert len(got_a) == 100 and len(got_b) == 200
    assert not {c.id for c in got_a} & {c.id for c in got_b}
    assert a.claim(10, 0, 30.0) == []


def test_claims_start_at_the_instances_own_folder(database: str, tmp_path: Path) -> None:
    a = ledger(database, "a")
    a.publish(files(tmp_path, 400, folders=8))
    high = a.claim(10, 2**30, 30.0)
    low = a.claim(10, 0, 30.0)
    # Two starting points give two different folders first (the folder order is a hash's), and
    # each batch comes from one folder (50 files each), not spread thin over all of them.
    assert len({c.rel.partition("/")[0] for c in high}) == 1
    assert {c.rel.partition("/")[0] for c in high} != {c.rel.partition("/")[0] for c in low}


def test_an_outcome_is_recorded_only_under_its_own_fence(database: str, tmp_path: Path) -> None:
    a, b = ledger(database, "a"), ledger(database, "b")
    a.publish(files(tmp_path, 5))
    stalled = a.claim(5, 0, 30.0)
    assert a.confirm(stalled, 30.0) == {c.id for c in stalled}
    with psycopg.connect(database, autocommit=True) as conn:  # a stalls (SIGSTOP): its lease lapses
        conn.execute("UPDATE reorg_files SET lease = now() - interval '1 second'")
    assert b.expire() == 5
    taken = b.claim(5, 0, 30.0)
    assert {c.id for c in taken} == {c.id for c in stalled}
    fences = {c.id: c.fence for c in stalled}
    assert all(c.fence > fences[c.id] for c in taken)
    # a wakes: its outcomes change no row, and it may not move what it had
    assert a.confirm(stalled, 30.0) == set()
    assert a.finish([Finished(c.id, c.fence, FileState.DONE, "/x") for c in stalled]) == 0
    assert a.renew([c.id for c in stalled], 30.0) == 0
    assert b.finish([Finished(c.id, c.fence, FileState.DONE, f"/dest/{c.rel}") for c in taken]) == 5
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT state, finished_by, target FROM reorg_files").fetchall()
    assert {(s, by) for s, by, _ in rows} == {("done", "b")}
    assert all(bytes(t).startswith(b"/dest/") for _, _, t in rows)


def test_one_lister_at_a_time_and_the_lock_goes_with_the_session(database: str) -> None:
    a, b = ledger(database, "a"), ledger(database, "b")
    assert a.lister(30.0) and a.lister(30.0)
    assert not b.lister(30.0)
    with psycopg.connect(database, autocommit=True) as conn:  # a's session dies (its host, its process)
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
        )
    assert b.lister(30.0)
    assert not a.lister(30.0)
    b.close()
    assert a.lister(30.0)


def test_settings_that_differ_from_the_fleets_are_refused(database: str) -> None:
    ledger(database, "a")
    other = PgLedger(database, owner="b", identity="/share/inbox")
    refused = r"runs with --layout '\{year\}/\{month\}/\{day\}'.*given '\{year\}'"
    with pytest.raises(CoordinatorError, match=refused):
        other.open({**AGREED, "layout": "{year}"})
    ledger(database, "c", identity="/share/other").close()  # another source: its own settings


def test_a_database_that_is_down_says_so_and_is_found_again(database: str, postgres) -> None:
    a = ledger(database, "a")
    postgres.stop()
    try:
        with pytest.raises(CoordinatorDown) as down:
            a.counts()
        assert "password" not in str(down.value)
        with pytest.raises(CoordinatorDown):
            a.counts()  # (tried again at most once a second)
    finally:
        postgres.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert a.counts() == {}
            break
        except CoordinatorDown:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_the_url_is_never_shown_whole() -> None:
    assert where("postgresql://fleet:s3cret@db.example:6432/reorg?sslmode=require") == "db.example:6432/reorg"
    assert where("postgresql://postgres:@/fleet_1?host=/tmp/pg") == "/tmp/pg/fleet_1"
    with pytest.raises(CoordinatorError) as bad:
        check_url("mysql://u:s3cret@h/db")
    assert "s3cret" not in str(bad.value)


def test_a_stalled_lister_is_not_waited_for_beyond_its_silence(database: str) -> None:
    a, b = ledger(database, "a"), ledger(database, "b")
    assert a.lister(30.0)
    a.lister_alive()
    assert not b.lister(30.0)  # a is heard of: b waits
    with psycopg.connect(database, autocommit=True) as conn:  # a stalls (SIGSTOP): its session lives
        conn.execute("UPDATE reorg_sources SET lister_seen = now() - interval '60 seconds'")
    assert b.lister(30.0)
    assert b.ended_lister is not None and b.ended_lister[0] == "a" and b.ended_lister[1] >= 60
    assert not a.lister(30.0)  # a wakes: its session was ended, and b lists
    a.lister_alive()  # (its heartbeat changes nothing: b is the lister now)
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT lister_owner FROM reorg_sources").fetchone() == ("b",)


def test_an_instance_joining_a_busy_fleet_takes_no_lock_of_its_tables(database: str, tmp_path: Path) -> None:
    import threading

    a = ledger(database, "a")
    a.publish(files(tmp_path, 10))
    with psycopg.connect(database) as busy:  # the fleet at work: claims, and their source's row read
        busy.execute("SELECT 1 FROM reorg_sources FOR KEY SHARE")
        busy.execute("UPDATE reorg_files SET lease = now()")
        joined = threading.Event()
        b = PgLedger(database, owner="b", identity="/share/inbox")
        threading.Thread(target=lambda: (b.open(AGREED), joined.set()), daemon=True).start()
        # DDL (even IF NOT EXISTS) would wait for that transaction's locks, or deadlock with it.
        assert joined.wait(10), "the second instance waited for the fleet's locks"
        busy.rollback()


def test_a_database_of_a_newer_schema_is_refused(database: str) -> None:
    ledger(database, "a")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE reorg_schema SET version = 99")
    with pytest.raises(CoordinatorError, match="holds schema version 99, newer than this reorg-tui's 1"):
        ledger(database, "b")
