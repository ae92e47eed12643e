"""The quarantine store: records that survive restarts, and the operations on them."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reorg_tui.engine import steps
from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.engine import Engine
from reorg_tui.engine.errors import MoveError
from reorg_tui.engine.failures import Failures
from reorg_tui.engine.ledger import LEDGER_NAME, open_ledger
from reorg_tui.engine.quarantine import (
    QuarantineError,
    QuarantineFailed,
    QuarantineStore,
    ReadOnlyQuarantine,
    Record,
    StuckInQuarantine,
    open_store,
)
from tests.conftest import OLD, cli, make_settings, run_once, running, wait_for, write


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


def test_a_file_gone_between_the_look_and_the_delete_is_a_failure_not_bad_input(tmp_path, monkeypatch):
    """Another process (an operator's rm) removes the file after ``delete`` found it and before
    it unlinks it: that is a failure of the operation (exit 1, the file left as it is: gone),
    not a bad id (exit 2). The removal lands exactly between the two, after ``get``."""
    store = QuarantineStore(tmp_path / "q")
    record = _put(store, write(tmp_path / "2024-01-01_d.txt", b"d"))
    found = QuarantineStore.get

    def found_then_removed(self, item_id):
        got = found(self, item_id)
        os.unlink(self.file_path(got))  # the other process, right after the look
        return got

    monkeypatch.setattr(QuarantineStore, "get", found_then_removed)
    with pytest.raises(QuarantineFailed, match="is missing") as failed:
        store.delete(record.id)
    assert failed.value.exit_code == 1


@pytest.mark.parametrize("verb", ["release", "delete"])
def test_two_processes_releasing_one_item_at_once_put_it_back_once(tmp_path, tmpfs, verb):
    """Daemons may share a quarantine (shards of a source, sources with one destination), and
    each lists every item. Two releases of one item at once, across filesystems (the default
    quarantine lives on the destination's), both copied it: the source held it twice (found by
    an attack). The second, here another store with its own ledger as another daemon has, asks
    while the first stands at its copy's publish: it is told the item is busy; the file is back
    once. A delete asked meanwhile is refused the same way."""
    quarantine = tmpfs("q")
    source = tmp_path / "src"
    source.mkdir()
    stores = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir(mode=0o700)
        store = QuarantineStore(quarantine, ledger=open_ledger(tmp_path / name))
        store.repair()
        stores.append(store)
    first, second = stores
    record = _put(first, write(source / "2024-13-01_bad.txt", b"precious"))
    hold, at = threading.Event(), threading.Event()
    done: dict[str, object] = {}

    def stopping_at_the_publish(step: str) -> None:
        if threading.current_thread().name == "first" and step == "published":
            at.set()
            hold.wait(10)

    def release_first() -> None:
        done["first"] = first.release(record.id, source)

    with steps.watch(stopping_at_the_publish):
        thread = threading.Thread(target=release_first, name="first")
        thread.start()
        assert at.wait(10), "the first release did not reach its publish"
        try:
            with pytest.raises(QuarantineFailed, match="being released or deleted by another process"):
                if verb == "release":
                    second.release(record.id, source)
                else:
                    second.delete(record.id)
        finally:
            hold.set()
            thread.join(10)
    assert done["first"] == str(source / "2024-13-01_bad.txt")
    assert sorted(p.name for p in source.iterdir() if not p.name.startswith(".")) == ["2024-13-01_bad.txt"]
    assert (source / "2024-13-01_bad.txt").read_bytes() == b"precious"
    assert sorted(p.name for p in quarantine.iterdir() if not p.name.startswith(".")) == []
    with pytest.raises(QuarantineError):  # and afterwards it is simply gone
        second.release(record.id, source)


_REPAIR = (  # another daemon's start, in a process of its own: it prints how many it repaired
    "import sys; from pathlib import Path; from reorg_tui.engine.ledger import open_ledger; "
    "from reorg_tui.engine.quarantine import QuarantineStore; "
    "print(QuarantineStore(Path(sys.argv[1]), ledger=open_ledger(Path(sys.argv[2]))).repair())"
)


def test_a_restart_beside_a_daemon_quarantining_leaves_its_record_for_the_file_on_its_way(tmp_path, tmpfs):
    """Another daemon sharing the quarantine writes a record, then copies the file in (across
    filesystems: it may take minutes). A daemon starting meanwhile took that record for a crash's
    leftover and removed it: the file then landed with no record, listed nowhere, its origin lost
    (found by an attack). A record whose source is held by a live process is left; a crash's
    leftover, whose daemon is gone, is still removed. This process is the quarantining daemon
    (it holds its source, as every daemon does); the start is another process."""
    quarantine = tmpfs("q")
    source = tmp_path / "src"
    source.mkdir()
    (tmp_path / "a").mkdir(mode=0o700)
    (tmp_path / "b").mkdir(mode=0o700)
    writer = QuarantineStore(quarantine, ledger=open_ledger(tmp_path / "a"))
    writer.repair()

    def other_start() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _REPAIR, str(quarantine), str(tmp_path / "b")],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    held = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_SH)
    hold, at = threading.Event(), threading.Event()

    def copying(step: str) -> None:
        if threading.current_thread().name == "put" and step == "copied":
            at.set()
            hold.wait(30)

    put: list[Record] = []
    try:
        with steps.watch(copying):
            thread = threading.Thread(
                target=lambda: put.append(_put(writer, write(source / "2024-01-01_x.txt", b"x"))), name="put"
            )
            thread.start()
            assert at.wait(10), "the put did not reach its copy"
            try:
                assert other_start() == "0"
            finally:
                hold.set()
                thread.join(10)
    finally:
        os.close(held)
    record = put[0]
    assert (quarantine / f"{record.id}.json").exists()
    starting = QuarantineStore(quarantine, ledger=open_ledger(tmp_path / "b"))
    assert [r.id for r in starting.list()] == [record.id]
    assert starting.get(record.id).original == str(source / "2024-01-01_x.txt")
    # A leftover of a crash between the two (its daemon gone, its source held by no one).
    planted = "20240101T000000-0a1b2c3d"
    fields = json.loads((quarantine / f"{record.id}.json").read_text())
    (quarantine / f"{planted}.json").write_text(json.dumps({**fields, "id": planted}))
    assert other_start() == "1"
    assert not (quarantine / f"{planted}.json").exists()


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


# ---- the index in the ledger -------------------------------------------------------------------


def _fill(root, count, *, start=1_700_000_000.0):
    """``count`` items written as the store writes them (record, then file): fast, for sizes."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        item_id = f"20231114T221320-{n:08x}"
        name = f"2024-02-30_{n}.txt"
        write(root / item_id / name, b"x" * (n % 7))
        record = {
            "id": item_id,
            "name": name,
            "original": f"/src/{name}",
            "intended": None,
            "reason": f"reason {n}",
            "attempts": 1,
            "errors": [f"error {n}"],
            "quarantined_at": start + n,
            "first_failed_at": start + n,
            "size": n % 7,
        }
        (root / f"{item_id}.json").write_text(json.dumps(record))


def _settled(root):
    """As a folder nobody changed for a while (a change within its mtime's tick may hide)."""
    os.utime(root, (OLD, OLD))


def test_a_lost_state_folder_is_rebuilt_from_the_records_beside_the_files(tmp_path):
    settings = make_settings(tmp_path)
    names = [f"2024-02-{day}_lost{day}.txt" for day in (30, 31)] + ["2023-02-29_leap.txt"]
    for name in names:
        write(settings.source / name, name.encode(), OLD)
    run_once(settings)
    env = {
        "REORG_SOURCE": str(settings.source),
        "REORG_QUARANTINE": str(settings.quarantine),
        "REORG_STATE_DIR": str(settings.state_dir),
    }
    before = json.loads(cli("quarantine", "list", "--json", env=env).stdout)
    assert sorted(r["name"] for r in before) == sorted(names)

    shutil.rmtree(settings.state_dir)  # the ledger with it
    run_once(settings)  # the next start indexes the records again

    after = json.loads(cli("quarantine", "list", "--json", env=env).stdout)
    assert [(r["id"], r["name"], r["reason"], r["errors"]) for r in after] == [
        (r["id"], r["name"], r["reason"], r["errors"]) for r in before
    ]
    assert all("is not a real date" in r["reason"] for r in after)
    ledger = open_ledger(settings.state_dir, create=False)
    assert ledger.quarantine_stats(str(settings.quarantine)).count == 3


def test_repair_makes_the_index_and_the_folder_agree(tmp_path):
    root = tmp_path / "q"
    ledger = open_ledger(tmp_path)
    store = QuarantineStore(root, ledger=ledger)
    kept = _put(store, write(tmp_path / "2024-01-01_k.txt", b"k"))
    gone = _put(store, write(tmp_path / "2024-01-02_g.txt", b"g"))
    lost = _put(store, write(tmp_path / "2024-01-03_l.txt", b"l"))
    (root / gone.id / gone.name).unlink()  # its file removed by hand: the row and record go
    (root / f"{lost.id}.json").unlink()  # its record lost: written again from the index
    _fill(root / "more", 0)  # a stray empty folder is no item
    assert store.repair() == 2
    assert [r.id for r in QuarantineStore(root, ledger=ledger).list()] == [kept.id, lost.id]
    assert json.loads((root / f"{lost.id}.json").read_text())["name"] == "2024-01-03_l.txt"
    assert not (root / f"{gone.id}.json").exists() and not (root / gone.id).exists()
    assert ledger.quarantine_stats(str(root)).count == 2


def test_another_process_changing_the_quarantine_is_noticed_by_the_folders_mtime(tmp_path):
    root = tmp_path / "q"
    daemon = QuarantineStore(root, ledger=open_ledger(tmp_path))
    daemon.ensure()
    daemon.repair()
    other = QuarantineStore(root)  # a command line with no ledger, or a second daemon
    record = _put(other, write(tmp_path / "2024-01-01_o.txt", b"other"))
    assert [r.id for r in daemon.list()] == [record.id]
    assert daemon.stats().count == 1 and daemon.stats().bytes == 5
    other.delete(record.id)
    assert daemon.list() == [] and daemon.stats().count == 0


def _cost_of_counting(store, ledger, monkeypatch, times=20):
    """What ``times`` counts of the quarantine cost: folders listed, files read, SQLite VM steps."""
    listed, read, steps = [], [], [0]
    real_scandir, real_read = os.scandir, Path.read_bytes
    monkeypatch.setattr(os, "scandir", lambda p=".": (listed.append(p), real_scandir(p))[1])
    monkeypatch.setattr(Path, "read_bytes", lambda self: (read.append(self), real_read(self))[1])
    ledger._db.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 1)
    try:
        for _ in range(times):
            stats = store.stats()
    finally:
        ledger._db.set_progress_handler(None, 1)
        monkeypatch.undo()
    return stats, listed, read, steps[0]


def test_an_index_built_from_the_records_lies_in_the_ledger_in_the_order_it_is_listed(tmp_path):
    """A lost index is rebuilt from the records, which the folder lists in no order; rows added
    in that order scattered the index's pages over the ledger's file, and a listing from a cold
    cache then read it a page at a time, seeking back and forth (1 s for 50,000, not 0.7). Added
    oldest first, the pages of the index in key order lie in file order: SQLite's own page map
    (dbstat) says so."""
    root = tmp_path / "q"
    _fill(root, 3000)
    (tmp_path / "state").mkdir()
    ledger = open_ledger(tmp_path / "state")
    QuarantineStore(root, ledger=ledger).repair()
    ledger.close()
    db = sqlite3.connect(tmp_path / "state" / LEDGER_NAME)
    try:
        pages = [
            p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name = 'quarantine' ORDER BY path")
        ]
    finally:
        db.close()
    assert len(pages) > 20
    ahead = sum(1 for a, b in zip(pages, pages[1:], strict=False) if b > a)
    assert ahead >= 0.95 * (len(pages) - 1), pages


def test_a_list_or_a_count_reads_no_record_and_their_cost_does_not_grow(tmp_path, monkeypatch):
    """The daemon counts the quarantine after every scan: with an index that cost is one stat of
    the folder and a query whose work does not depend on how many items there are. Counted, not
    timed: SQLite's virtual-machine steps (its progress handler) and the files opened."""
    steps = {}
    for count in (10, 3000):
        root = tmp_path / f"q{count}"
        _fill(root, count)
        (tmp_path / f"state{count}").mkdir()
        ledger = open_ledger(tmp_path / f"state{count}")
        store = QuarantineStore(root, ledger=ledger)
        store.repair()
        _settled(root)
        assert store.stats().count == count  # the first look lists the folder, once
        stats, listed, read, steps[count] = _cost_of_counting(store, ledger, monkeypatch)
        assert listed == [] and read == []
        assert stats.count == count and stats.bytes == sum(n % 7 for n in range(count))
        assert stats.oldest == 1_700_000_000.0
        page = store.list(limit=5, offset=count - 7)  # oldest first
        assert [r.name for r in page] == [f"2024-02-30_{n}.txt" for n in range(count - 7, count - 2)]
    # 300 times the items: a B-tree a level deeper at most, not 300 times the work
    assert steps[3000] < 1.5 * steps[10], steps


def test_the_quarantine_is_counted_from_its_index_before_the_start_looks_at_every_item(tmp_path, monkeypatch):
    # At 50,000 items the start's look at each (repair) takes seconds; meanwhile the dashboard's
    # tab said "Quarantine (0)". Here the look is held until the count shows (or 10 s pass).
    settings = make_settings(tmp_path)
    _fill(settings.quarantine, 3)
    ledger = open_ledger(settings.state_dir)
    QuarantineStore(settings.quarantine, ledger=ledger).repair()  # indexed by an earlier run
    ledger.close()
    counted = threading.Event()
    real_repair = QuarantineStore.repair

    def repair_once_counted(self):
        counted.wait(10)
        return real_repair(self)

    monkeypatch.setattr(QuarantineStore, "repair", repair_once_counted)
    engine = Engine(settings)
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: engine.snapshot().quarantine.count == 3, timeout=5, what="the count, before the repair"
        )
        counted.set()
    finally:
        counted.set()
        stop.set()
        thread.join(10)
    assert engine.snapshot().quarantine.count == 3


def test_a_listing_while_the_engine_starts_is_the_index_and_reads_no_record(tmp_path, monkeypatch):
    """The dashboard lists the quarantine as soon as it opens. While the start looks at every item
    (seconds at 50,000), a listing is the index the last run left: it reads no record (the start
    reads them; reading them twice, each waiting on the other, doubled the time to the first
    rows). Once started, a listing sees what the start found. Here the start's look is held."""
    settings = make_settings(tmp_path)
    _fill(settings.quarantine, 3)
    ledger = open_ledger(settings.state_dir)
    QuarantineStore(settings.quarantine, ledger=ledger).repair()  # indexed by an earlier run
    ledger.close()
    planted = "20231114T221320-00000003"

    def plant() -> None:  # an item written by another process during the start: not indexed yet
        _fill(settings.quarantine / "planted", 4)
        for name in (planted, f"{planted}.json"):
            (settings.quarantine / "planted" / name).rename(settings.quarantine / name)
        shutil.rmtree(settings.quarantine / "planted")

    listed_while_starting: list[list[str]] = []
    read: list[str] = []
    engine = Engine(settings)
    real_repair, real_read = QuarantineStore.repair, QuarantineStore._read

    def repair_after_a_look(self):
        plant()
        read.clear()
        listed_while_starting.append([r.id for r in engine.quarantine_list(errors=False)])
        assert read == [], "a listing during the start read records"
        return real_repair(self)

    def reading(self, item_id):
        read.append(item_id)
        return real_read(self, item_id)

    monkeypatch.setattr(QuarantineStore, "repair", repair_after_a_look)
    monkeypatch.setattr(QuarantineStore, "_read", reading)
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: engine.snapshot().state == "running", timeout=10, what="the start")
        after = [r.id for r in engine.quarantine_list(errors=False)]
    finally:
        stop.set()
        thread.join(10)
    indexed = [f"20231114T221320-{n:08x}" for n in range(3)]
    assert listed_while_starting == [indexed]
    assert after == [*indexed, planted]
    assert engine.quarantine_record(planted).reason == "reason 3"  # its own record, read at the start


def test_a_read_only_look_at_the_quarantine_writes_nothing_anywhere(tmp_path):
    """A read-only viewer (``--read-only``) sees the daemon's index through a read-only look at
    its ledger: the state folder is byte for byte as it was, no -wal or -shm made, even with an
    item the index does not hold yet (a store would index it, writing the daemon's ledger). With
    no ledger indexing the quarantine, it reads the records, indexing them in memory only."""
    settings = make_settings(tmp_path)
    _fill(settings.quarantine, 3)
    ledger = open_ledger(settings.state_dir)
    QuarantineStore(settings.quarantine, ledger=ledger).repair()  # the daemon's index
    ledger.close()
    _fill(tmp_path / "other", 4)  # another process quarantines a fourth item
    late = "20231114T221320-00000003"
    for name in (late, f"{late}.json"):
        (tmp_path / "other" / name).rename(settings.quarantine / name)
    state_before = {p.name: p.read_bytes() for p in settings.state_dir.iterdir()}

    view = ReadOnlyQuarantine(settings.quarantine, settings.state_dir)
    indexed = [f"20231114T221320-{n:08x}" for n in range(3)]
    assert [r.id for r in view.list(errors=False)] == indexed
    assert view.get(indexed[1]).errors == ["error 1"]
    with pytest.raises(QuarantineError, match="no quarantined file"):
        view.get(late)  # not indexed yet: the daemon indexes it after its next scan
    assert {p.name: p.read_bytes() for p in settings.state_dir.iterdir()} == state_before

    alone = ReadOnlyQuarantine(settings.quarantine, tmp_path / "no-state")
    assert [r.id for r in alone.list()] == [*indexed, late]
    assert alone.get(late).reason == "reason 3"
    assert not (tmp_path / "no-state").exists()
    assert {p.name: p.read_bytes() for p in settings.state_dir.iterdir()} == state_before

    store = open_store(settings.quarantine, settings.state_dir)  # what an operator's dashboard uses
    assert late in [r.id for r in store.list()]
    store.ledger.close()
    assert {p.name: p.read_bytes() for p in settings.state_dir.iterdir()} != state_before, "it indexed"


def test_an_idle_daemon_never_lists_or_reads_its_quarantine_after_a_scan(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, poll_interval=0.05)
    _fill(settings.quarantine, 2000)
    _settled(settings.quarantine)
    quarantine = str(settings.quarantine)
    touched: list[str] = []
    real_scandir, real_read = os.scandir, Path.read_bytes

    def scandir(path="."):
        if isinstance(path, str | Path) and str(path).startswith(quarantine):
            touched.append(f"scandir {path}")
        return real_scandir(path)

    def read_bytes(self):
        if str(self).startswith(quarantine):
            touched.append(f"read {self}")
        return real_read(self)

    counts = [0]
    real_count = Failures.count_quarantine

    def count_quarantine(self):
        counts[0] += 1
        real_count(self)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(Failures, "count_quarantine", count_quarantine)
    with running(settings) as (engine, _):
        wait_for(lambda: engine.snapshot().quarantine.count == 2000, what="the quarantine counted")
        touched.clear()  # the start (repair, the first look) lists and reads; then nothing
        counted = counts[0]
        wait_for(lambda: counts[0] >= counted + 10, what="ten more counts (one each poll or scan)")
        assert engine.intake.scans >= 1
        assert engine.snapshot().quarantine.count == 2000
        assert touched == []


def test_a_failure_after_the_file_arrived_never_deletes_it(tmp_path, monkeypatch):
    # A setuid file of another user, say: the rename in succeeded, clearing the bit did not.
    store = QuarantineStore(tmp_path / "q", ledger=open_ledger(tmp_path))
    src = write(tmp_path / "src/2024-01-01_setuid.sh", b"#!/bin/sh\n")
    real_move = store.mover.move

    def move_then_fail(*args, **kwargs):
        real_move(*args, **kwargs)
        raise MoveError.from_os(PermissionError(errno.EPERM, "Operation not permitted"), "clear setuid")

    monkeypatch.setattr(store.mover, "move", move_then_fail)
    with pytest.raises(StuckInQuarantine, match="stays there") as raised:
        _put(store, src)
    record = raised.value.record
    assert not src.exists() and store.file_path(record).read_bytes() == b"#!/bin/sh\n"
    on_disk = json.loads((tmp_path / "q" / f"{record.id}.json").read_text())
    assert "quarantined, but then" in on_disk["errors"][-1] and "EPERM" in on_disk["errors"][-1]
    assert [r.id for r in store.list()] == [record.id]


def test_a_failure_before_the_file_arrived_leaves_no_record_and_the_file_in_the_source(tmp_path, monkeypatch):
    store = QuarantineStore(tmp_path / "q", ledger=open_ledger(tmp_path))
    src = write(tmp_path / "src/2024-01-01_stays.txt", b"stays")

    def refuse(*args, **kwargs):
        raise MoveError.from_os(PermissionError(errno.EACCES, "Permission denied"), "rename")

    monkeypatch.setattr(store.mover, "move", refuse)
    with pytest.raises(MoveError):
        _put(store, src)
    assert src.read_bytes() == b"stays"
    assert list((tmp_path / "q").iterdir()) == [] and store.list() == []


def test_a_file_stuck_in_the_quarantine_counts_as_quarantined_with_a_warning(settings, monkeypatch):
    engine = Engine(settings)
    rec = []
    engine.subscribe(rec.extend)
    src = write(settings.source / "2024-01-01_setuid.sh", b"#!/bin/sh\n")
    real_move = engine.quarantine.mover.move

    def move_then_fail(*args, **kwargs):
        real_move(*args, **kwargs)
        raise MoveError.from_os(PermissionError(errno.EPERM, "Operation not permitted"), "clear setuid")

    monkeypatch.setattr(engine.quarantine.mover, "move", move_then_fail)
    engine.failures.quarantine(src.name, str(src), "EPERM", None, attempts=1)
    assert engine.failures.result.quarantined == 1 and engine.failures.quarantine_stats.count == 1
    assert [type(e).__name__ for e in rec] == ["Warning", "Quarantined"]
    assert "stays there" in rec[0].message


def test_the_command_line_uses_the_daemons_ledger_or_else_the_records(tmp_path):
    root = tmp_path / "q"
    (tmp_path / "state").mkdir()
    daemon = QuarantineStore(root, ledger=open_ledger(tmp_path / "state"))
    record = _put(daemon, write(tmp_path / "2024-01-01_c.txt", b"c"))
    daemon.repair()
    indexed = open_store(root, tmp_path / "state")
    assert indexed.ledger is not daemon.ledger and indexed.ledger.quarantine_indexed(indexed.key)
    assert [r.id for r in indexed.list()] == [record.id]
    for bare in (open_store(root, None), open_store(root, tmp_path / "elsewhere")):
        assert [r.id for r in bare.list()] == [record.id]  # from the records, in memory
    assert not (tmp_path / "elsewhere").exists()  # nothing made where the command line looked
    other = open_store(tmp_path / "q2", tmp_path / "state")  # a ledger that indexes another one
    assert not other.ledger.quarantine_indexed(other.key)


def test_a_planted_record_whose_id_climbs_out_removes_nothing_at_start(tmp_path):
    """A record in the quarantine is input: one whose id names a path outside its item folder
    ("..", absolute) is never used to remove or rewrite anything (found by an attack: repair at
    start removed the delivered ``<id>.json`` it pointed at)."""
    import json

    from tests.conftest import OLD, make_settings, run_once, write

    settings = make_settings(tmp_path)
    write(settings.source / "2024-01-05_report.json", b"{}", OLD)
    run_once(settings)
    delivered = settings.dest / "2024/01/05/2024-01-05_report.json"
    assert delivered.exists()
    outside = write(tmp_path / "etc" / "foo.json", b"precious")
    for planted, item_id in (("planted.json", "../../dest/2024/01/05/2024-01-05_report"),
                             ("abs.json", str(tmp_path / "etc" / "foo"))):  # fmt: skip
        (settings.quarantine / planted).write_text(
            json.dumps({"id": item_id, "name": "zzz", "original": "", "intended": None, "reason": "x",
                        "attempts": 0, "errors": [], "quarantined_at": 0, "first_failed_at": 0, "size": 0})
        )  # fmt: skip

    run_once(settings)

    assert delivered.read_bytes() == b"{}" and outside.read_bytes() == b"precious"
