"""The ledger as state that may be damaged or hostile: a newer schema, a file that is not a
database, rows edited by hand (wrong types, paths outside the roots). The daemon says one line
or warns and goes on; it never acts on a path outside the folders it was given."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import time
from pathlib import Path

from reorg_tui.engine import events as ev
from reorg_tui.engine.ledger import Identity, Step, Transfer, TransferKind, open_ledger
from tests.conftest import OLD, cli, files_under, make_settings, run_once, write


def _once(settings) -> object:
    return cli(
        "--once", "-s", str(settings.source), "-d", str(settings.dest),
        "--quarantine", str(settings.quarantine), "--state-dir", str(settings.state_dir), "--settle", "0",
    )  # fmt: skip


def test_a_ledger_from_a_newer_version_is_refused_with_one_line_and_nothing_moves(tmp_path):
    settings = make_settings(tmp_path)
    open_ledger(settings.state_dir).close()
    db = sqlite3.connect(settings.state_dir / "ledger.sqlite3")
    db.execute("PRAGMA user_version=999")
    db.close()
    write(settings.source / "2024-01-01_a.txt", b"a", OLD)

    result = _once(settings)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "newer reorg-tui (schema 999" in result.stderr
    assert list(files_under(settings.source)) == ["2024-01-01_a.txt"]


def test_a_ledger_that_is_not_a_database_is_set_aside_with_a_warning_and_the_daemon_runs(tmp_path):
    settings = make_settings(tmp_path)
    (settings.state_dir / "ledger.sqlite3").write_bytes(b"not a database, " * 100)
    write(settings.source / "2024-01-01_a.txt", b"a", OLD)

    result = _once(settings)

    assert result.returncode == 0, result.stderr
    assert "is not a database" in result.stderr and "set aside as" in result.stderr
    assert list(files_under(settings.dest)) == ["2024/01/01/2024-01-01_a.txt"]
    [aside] = settings.state_dir.glob("ledger.sqlite3.unreadable-*")
    assert aside.read_bytes().startswith(b"not a database")


def test_rows_edited_to_name_files_outside_the_roots_or_with_wrong_types_touch_nothing(tmp_path):
    settings = make_settings(tmp_path)
    victim = write(tmp_path / "outside" / "2024-01-01_precious.txt", b"not the daemon's", OLD)
    st = victim.stat()
    # Owned by a process of this host that is gone: recovery's to act on, were its paths ours.
    ledger = open_ledger(settings.state_dir, owner=f"{socket.gethostname()}:{2**22 + 1}:gone")
    # A published copy whose "source" is a file outside the source: recovery would remove it.
    ledger.begin(
        Transfer(
            TransferKind.DELIVER, Step.PUBLISHED, Identity.of(st), os.fsencode(victim),
            os.fsencode(settings.dest / "2024/01/01/2024-01-01_precious.txt"), time.time(),
        )
    )  # fmt: skip
    # And one climbing out of the source with "..".
    ledger.begin(
        Transfer(
            TransferKind.DELIVER, Step.PUBLISHED, Identity.of(st),
            os.fsencode(f"{settings.source}/../outside/2024-01-01_precious.txt"),
            os.fsencode(settings.dest / "x"), time.time(),
        )
    )  # fmt: skip
    ledger.close()
    db = sqlite3.connect(settings.state_dir / "ledger.sqlite3")
    db.execute(
        "INSERT INTO transfers (kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target, started)"
        " VALUES ('deliver', 'published', 'x', 1, 2, 3, 4, 'text, not bytes', x'00', 'soon')"
    )
    db.execute("INSERT INTO transfers (kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target,"
               " started) VALUES ('sideways', 'published', 1, 1, 2, 3, 4, x'2f', x'2f', 0)")  # fmt: skip
    db.commit()
    db.close()
    write(settings.source / "2024-01-02_b.txt", b"b", OLD)

    engine, _ = run_once(settings)

    assert victim.read_bytes() == b"not the daemon's"
    assert list(files_under(settings.dest)) == ["2024/01/02/2024-01-02_b.txt"]


def test_a_file_where_the_staging_folder_would_be_does_not_stop_moves_on_one_filesystem(tmp_path):
    settings = make_settings(tmp_path)
    write(settings.dest / ".reorg-tmp", b"someone's file")
    write(settings.quarantine / ".reorg-tmp", b"another")
    write(settings.source / "2024-01-01_a.txt", b"a", OLD)
    write(settings.source / "2024-02-30_bad.txt", b"bad", OLD)

    run_once(settings)

    assert list(files_under(settings.dest / "2024")) == ["01/01/2024-01-01_a.txt"]
    assert (settings.dest / ".reorg-tmp").read_bytes() == b"someone's file"
    assert any(p.endswith("2024-02-30_bad.txt") for p in files_under(settings.quarantine))


def test_finished_transfers_older_than_history_days_are_forgotten_and_open_ones_kept(tmp_path):
    settings = make_settings(tmp_path, history_days=1.0)
    ledger = open_ledger(settings.state_dir)
    st = os.stat(tmp_path)
    old = time.time() - 2 * 86_400
    for step in (Step.DONE, Step.WITHDRAWN, Step.PUBLISHED):
        ledger.record([Transfer(TransferKind.DELIVER, step, Identity.of(st), b"/a", b"/b", old, old)])
    ledger.close()
    write(settings.source / "2024-01-02_b.txt", b"b", OLD)

    run_once(settings)

    db = sqlite3.connect(settings.state_dir / "ledger.sqlite3")
    steps = sorted(r[0] for r in db.execute("SELECT step FROM transfers"))
    db.close()
    # The old done and withdrawn rows are gone; the open one (paths outside the roots: left
    # alone by recovery) and today's delivery stay.
    assert steps == ["done", "published"]


def _dead_owner() -> str:
    return f"{socket.gethostname()}:{2**22 + 1}:0:gone"  # a pid no process can have


def _forge(settings, **row) -> None:
    ledger = open_ledger(settings.state_dir, owner=row.pop("owner", _dead_owner()))
    ledger.begin(Transfer(**row))
    ledger.close()


def test_a_published_row_whose_target_does_not_hold_its_copy_keeps_the_source(tmp_path):
    """A crash while a published copy was being taken back (its source could not be removed)
    leaves a row at published with no copy at its target: the source is the file, and stays."""
    settings = make_settings(tmp_path)
    src = write(settings.source / "2024-01-03_kept.txt", b"the only copy", OLD)
    _forge(
        settings, kind=TransferKind.DELIVER, step=Step.PUBLISHED, identity=Identity.of(src.stat()),
        source=os.fsencode(src), target=os.fsencode(settings.dest / "2024/01/03/2024-01-03_kept.txt"),
        started=time.time(), copy_ino=123456789,
    )  # fmt: skip

    run_once(settings)

    assert list(files_under(settings.dest)) == ["2024/01/03/2024-01-03_kept.txt"]  # moved now, once
    assert (settings.dest / "2024/01/03/2024-01-03_kept.txt").read_bytes() == b"the only copy"


def test_a_staged_copy_is_not_taken_for_another_file_with_its_inode_number(tmp_path):
    """A staged row's copy is gone from staging; another file in the target folder has the same
    inode number (reused) but another size: it is not the copy, so the source stays and moves."""
    settings = make_settings(tmp_path)
    src = write(settings.source / "2024-01-04_x.bin", os.urandom(2000), OLD)
    other = write(settings.dest / "2024/01/04/2024-01-04_y.bin", os.urandom(3000))
    _forge(
        settings, kind=TransferKind.DELIVER, step=Step.STAGED, identity=Identity.of(src.stat()),
        source=os.fsencode(src), target=os.fsencode(settings.dest / "2024/01/04/2024-01-04_x.bin"),
        started=time.time(), copy_ino=other.stat().st_ino,
        staging=os.fsencode(settings.dest / ".reorg-tmp" / f"{2**22 + 1}-abcdef12-0.part"),
    )  # fmt: skip
    data = src.read_bytes()

    run_once(settings)

    assert (settings.dest / "2024/01/04/2024-01-04_x.bin").read_bytes() == data
    assert other.exists()


def test_a_row_naming_a_delivered_file_as_its_staging_copy_removes_nothing(tmp_path):
    settings = make_settings(tmp_path)
    delivered = write(settings.dest / "2024/01/05/2024-01-05_done.txt", b"delivered")
    src = write(settings.source / "2024-01-06_next.txt", b"next", OLD)
    _forge(
        settings, kind=TransferKind.DELIVER, step=Step.INTENT, identity=Identity.of(src.stat()),
        source=os.fsencode(src), target=os.fsencode(settings.dest / "2024/01/06/2024-01-06_next.txt"),
        started=time.time(), copy_ino=delivered.stat().st_ino, staging=os.fsencode(delivered),
    )  # fmt: skip

    run_once(settings)

    assert delivered.read_bytes() == b"delivered"
    assert (settings.dest / "2024/01/06/2024-01-06_next.txt").read_bytes() == b"next"


def test_rows_of_this_state_folder_from_another_hostname_are_recovered_not_left(tmp_path, tmpfs):
    """A container recreated with a new hostname on the same state volume: its old rows are
    its own, from before; a published copy is finished, not delivered a second time."""
    other = tmpfs("other")
    settings = make_settings(tmp_path, dest=other / "dest", quarantine=other / "q")
    src = write(settings.source / "2024-01-07_a.bin", os.urandom(1000), OLD)
    copy = write(settings.dest / "2024/01/07/2024-01-07_a.bin", src.read_bytes())
    os.utime(copy, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
    _forge(
        settings, kind=TransferKind.DELIVER, step=Step.PUBLISHED, identity=Identity.of(src.stat()),
        source=os.fsencode(src), target=os.fsencode(copy), started=time.time(),
        copy_ino=copy.stat().st_ino, owner=f"old-hostname:{os.getpid() + 1}:1:tok",
    )  # fmt: skip

    run_once(settings)

    assert not src.exists()
    assert list(files_under(settings.dest)) == ["2024/01/07/2024-01-07_a.bin"]


def test_a_dead_copy_in_the_sources_staging_folder_is_removed_and_nothing_else_there(tmp_path):
    settings = make_settings(tmp_path)
    dead = write(settings.source / ".reorg-tmp" / f"{2**22 + 1}-abcdef12-3.part", b"half a release")
    users = write(settings.source / ".reorg-tmp" / "notes.txt", b"someone's own file")

    run_once(settings)

    assert not dead.exists() and users.read_bytes() == b"someone's own file"


def _fill(folder) -> Path:
    """Fill the filesystem of ``folder`` to the last byte; returns the filler, to remove later."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_state_folder_never_costs_a_file_renames_go_on_and_copies_wait(tmp_path, tmpfs):
    """The ledger cannot be written (its filesystem is full): a rename happens anyway (it needs
    no record), a copy does not begin (it needs its intent); once there is room, every file is
    delivered exactly once, and one warning said so rather than one a file."""
    from tests.conftest import running, wait_for

    state = tmpfs("state", size="2m")
    other = tmpfs("other")
    same = make_settings(tmp_path / "same", state_dir=state / "same")
    across = make_settings(tmp_path / "across", dest=other / "dest", quarantine=other / "q",
                           state_dir=state / "across")  # fmt: skip
    with running(same) as (engine_a, _), running(across) as (engine_b, rec_b):
        filler = _fill(state)
        for i in range(5):
            write(same.source / f"2024-03-0{i + 1}_r{i}.txt", f"rename {i}", OLD)
            write(across.source / f"2024-03-0{i + 1}_c{i}.txt", f"copy {i}", OLD)
        wait_for(lambda: len(files_under(same.dest)) == 5, what="the renames, unrecorded")
        wait_for(lambda: len(rec_b.of(ev.Retried)) >= 5, what="the copies to wait")
        assert len(files_under(across.source)) == 5 and not files_under(across.dest)
        assert not list((across.dest / ".reorg-tmp").glob("*"))
        filler.unlink()
        wait_for(
            lambda: len(files_under(across.dest)) == 5, timeout=20, what="the copies, once there is room"
        )
    assert files_under(same.source) == {} and files_under(across.source) == {}
    assert sorted(files_under(across.dest).values()) == sorted(
        hashlib.sha256(f"copy {i}".encode()).hexdigest() for i in range(5)
    )
