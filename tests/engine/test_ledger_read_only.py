"""The ledger opened read-only, as history reads it: it sees a running writer's commits, cannot
write, and never makes a file beside the ledger (SQLite's mode=ro alone would make -wal and -shm)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from reorg_tui.engine.ledger import LEDGER_NAME, LedgerError, NoLedger, Query, TransferKind, open_ledger


def _rename(ledger, name: bytes) -> None:
    ledger.record_renames(
        TransferKind.DELIVER,
        "b.1",
        [(1, 2, 3, 4, 5, b"/src/" + name, b"/dst/2024/01/01/" + name, time.time())],
    )


def test_a_reader_sees_what_a_running_writer_commits_and_cannot_write(tmp_path):
    writer = open_ledger(tmp_path)
    _rename(writer, b"2024-01-01_a")
    reader = open_ledger(tmp_path, read_only=True)
    try:
        assert [r.source for r in reader.query(Query(name="*_a"))] == [b"/src/2024-01-01_a"]
        _rename(writer, b"2024-01-01_b")
        assert [r.source for r in reader.query(Query())] == [b"/src/2024-01-01_b", b"/src/2024-01-01_a"]
        with pytest.raises(sqlite3.OperationalError):
            _rename(reader, b"2024-01-01_c")
    finally:
        reader.close()
        writer.close()


def test_a_closed_ledger_is_read_with_no_file_made_beside_it(tmp_path):
    writer = open_ledger(tmp_path)
    _rename(writer, b"2024-01-01_a")
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER_NAME]
    reader = open_ledger(tmp_path, read_only=True)
    assert len(reader.query(Query(name="2024-01-01_a"))) == 1
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER_NAME]


def test_no_file_an_empty_file_and_garbage(tmp_path):
    with pytest.raises(NoLedger):
        open_ledger(tmp_path, read_only=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / LEDGER_NAME).write_bytes(b"")
    with pytest.raises(NoLedger):
        open_ledger(tmp_path, read_only=True)
    (tmp_path / LEDGER_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError) as caught:
        open_ledger(tmp_path, read_only=True)
    assert not isinstance(caught.value, NoLedger) and "not a usable ledger" in str(caught.value)
