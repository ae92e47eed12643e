"""The quarantine store: records that survive restarts, and the operations on them."""

from __future__ import annotations

import json

import pytest

from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.quarantine import QuarantineError, QuarantineStore
from tests.conftest import OLD, run_once, running, wait_for, write


def _put(store, src, reason="broken"):
    return store.put(
        Tree(str(src.parent)),
        src.name,
        reason=reason,
        intended="/dest/x",
        attempts=3,
        errors=["e1", "e2", "e3"],
    )


def test_put_list_show_survive_a_new_store(tmp_path):
    src = write(tmp_path / "src/2024-01-01_a.txt", b"aaa")
    record = _put(QuarantineStore(tmp_path / "q"), src)
    assert not src.exists()
    fresh = QuarantineStore(tmp_path / "q")  # as after a restart
    [again] = fresh.list()
    assert again == record
    assert fresh.file_path(again).read_bytes() == b"aaa"
    assert fresh.get(record.id).errors == ["e1", "e2", "e3"]
    assert fresh.stats().count == 1 and fresh.stats().bytes == 3


def test_two_files_with_one_name_are_kept_apart(tmp_path):
    store = QuarantineStore(tmp_path / "q")
    first = _put(store, write(tmp_path / "a/2024-01-01_same.txt", b"1"))
    second = _put(store, write(tmp_path / "b/2024-01-01_same.txt", b"2"))
    assert first.id != second.id
    assert {store.file_path(r).read_bytes() for r in store.list()} == {b"1", b"2"}


def test_release_puts_the_file_back_under_a_free_name(tmp_path):
    source = tmp_path / "src"
    store = QuarantineStore(tmp_path / "q")
    record = _put(store, write(source / "2024-01-01_r.txt", b"first"))
    write(source / "2024-01-01_r.txt", b"a newer file with the same name")
    path = store.release(record.id, source)
    assert path == str(source / "2024-01-01_r (1).txt")
    assert (source / "2024-01-01_r (1).txt").read_bytes() == b"first"
    assert (source / "2024-01-01_r.txt").read_bytes() == b"a newer file with the same name"
    assert store.list() == []
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == []


def test_delete_removes_the_file_and_its_record(tmp_path):
    store = QuarantineStore(tmp_path / "q")
    record = _put(store, write(tmp_path / "2024-01-01_d.txt", b"d"))
    store.delete(record.id)
    assert list((tmp_path / "q").iterdir()) == []
    with pytest.raises(QuarantineError, match="no quarantined file"):
        store.delete(record.id)
    with pytest.raises(QuarantineError):
        store.get("../../etc/passwd")


def test_repair_after_a_crash(tmp_path):
    root = tmp_path / "q"
    store = QuarantineStore(root)
    kept = _put(store, write(tmp_path / "2024-01-01_k.txt", b"k"))
    # a record whose file never arrived (crash between the record and the move)
    (root / "20200101T000000-deadbeef.json").write_text(
        json.dumps({**json.loads((root / f"{kept.id}.json").read_text()), "id": "20200101T000000-deadbeef"})
    )
    # a file whose record was lost
    write(root / "20200101T000000-cafebabe/2024-01-01_orphan.txt", b"o")
    store.repair()
    names = sorted(r.name for r in store.list())
    assert names == ["2024-01-01_k.txt", "2024-01-01_orphan.txt"]
    assert not (root / "20200101T000000-deadbeef.json").exists()


def test_released_file_goes_through_the_running_engine(settings, immutable):
    folder = settings.dest / "2024/02/02"
    folder.mkdir(parents=True)
    immutable(folder)
    write(settings.source / "2024-02-02_again.txt", b"again", OLD)
    engine, _ = run_once(settings.with_(max_retries=0))
    [record] = engine.quarantine_list()
    assert record.attempts == 1
    from tests.conftest import unmark

    unmark(folder)
    with running(settings) as (engine, _):
        engine.release(record.id)
        wait_for((folder / "2024-02-02_again.txt").exists, what="the released file to move")
        wait_for(lambda: engine.snapshot().quarantine.count == 0, what="the quarantine count to drop")
    assert (folder / "2024-02-02_again.txt").read_bytes() == b"again"
