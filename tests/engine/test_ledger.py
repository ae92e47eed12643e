"""The ledger as state that may be damaged or hostile: a newer schema, a file that is not a
database, rows edited by hand (wrong types, paths outside the roots). The daemon says one line
or warns and goes on; it never acts on a path outside the folders it was given."""

from __future__ import annotations

import os
import socket
import sqlite3
import time

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
