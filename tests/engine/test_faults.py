"""Real faults: another filesystem, a full disk, errors root cannot bypass, restarts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from reorg_tui.engine import events as ev
from reorg_tui.engine.engine import Engine
from reorg_tui.engine.ledger import open_ledger
from tests.conftest import OLD, files_under, make_settings, run_once, running, unmark, wait_for, write


def test_move_across_filesystems_keeps_every_guarantee(tmp_path, tmpfs):
    dest = tmpfs("dest")
    settings = make_settings(tmp_path, dest=dest, verify=True)
    payload = {f"2024-04-{d:02d}_file{d}.bin": os.urandom(d * 10_000) for d in range(1, 11)}
    for name, data in payload.items():
        write(settings.source / name, data, OLD)
    special = write(settings.source / "2024-04-11_mode.sh", b"#!/bin/sh\n", OLD)
    os.chmod(special, 0o4755)  # setuid must not travel
    mtime_ns = special.stat().st_mtime_ns
    existing = write(dest / "2024/04/01/2024-04-01_file1.bin", b"keep me")

    engine, rec = run_once(settings)

    assert files_under(settings.source) == {}
    for name, data in payload.items():
        folder = dest / "2024/04" / name[8:10]
        target = folder / (name.replace(".bin", " (1).bin") if name.endswith("file1.bin") else name)
        assert target.read_bytes() == data
    assert existing.read_bytes() == b"keep me"
    moved = dest / "2024/04/11/2024-04-11_mode.sh"
    assert stat.S_IMODE(moved.stat().st_mode) == 0o755
    assert moved.stat().st_mtime_ns == mtime_ns
    assert list((dest / ".reorg-tmp").iterdir()) == []
    assert {m.how for m in rec.of(ev.Moved)} == {"copied"}


def test_intake_pauses_under_the_headroom_minimum_and_resumes_by_itself(tmp_path, tmpfs):
    dest = tmpfs("small", size="4m")
    settings = make_settings(tmp_path, dest=dest, quarantine=tmp_path / "q", min_free_percent=50)
    ballast = dest / "ballast"
    ballast.write_bytes(b"\0" * (3 * 1024 * 1024))  # 75% used: under the 50% free minimum
    write(settings.source / "2024-09-09_waiting.txt", b"patience", OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: engine.snapshot().state == "paused-disk", what="the disk pause")
        time.sleep(settings.poll_interval + 0.5)
        snap = engine.snapshot()
        assert "under the 50% minimum" in snap.pause_reason
        assert snap.disk.free_percent < 50
        assert (settings.source / "2024-09-09_waiting.txt").read_bytes() == b"patience"
        ballast.unlink()
        wait_for((dest / "2024/09/09/2024-09-09_waiting.txt").exists, what="resume after space is freed")
        assert engine.snapshot().state == "running"
        assert [e.reason for e in rec.of(ev.Paused)] == ["disk"]
        assert [e.reason for e in rec.of(ev.Resumed)] == ["disk"]


def test_disk_full_during_a_copy_leaves_no_partial_file_and_the_source_intact(tmp_path, tmpfs):
    dest = tmpfs("tiny", size="1m")
    settings = make_settings(
        tmp_path, dest=dest, quarantine=tmp_path / "q", min_free_percent=0, max_retries=1
    )
    big = os.urandom(2 * 1024 * 1024)
    write(settings.source / "2024-10-10_big.bin", big, OLD)
    write(settings.source / "2024-10-11_small.txt", b"fits", OLD)
    with running(settings) as (engine, rec):
        wait_for((dest / "2024/10/11/2024-10-11_small.txt").exists, what="the small file")
        wait_for(lambda: engine.snapshot().queues.retry == 1, what="the big file to wait for space")
        time.sleep(0.5)  # several retry rounds: ENOSPC must not use up its retries
        engine.pause()
        wait_for(lambda: engine.snapshot().workers_busy == 0, what="in-flight copies to end")
        assert (settings.source / "2024-10-10_big.bin").read_bytes() == big
        assert not (dest / "2024/10/10/2024-10-10_big.bin").exists()
        assert list((dest / ".reorg-tmp").iterdir()) == []  # each failed copy cleaned up after itself
        assert engine.snapshot().totals.quarantined == 0
        assert (dest / "2024/10/11/2024-10-11_small.txt").read_bytes() == b"fits"


def test_transient_errors_retry_with_backoff_then_quarantine(settings, immutable):
    # chattr +i makes the date folder refuse new entries with EPERM, even for root.
    folder = settings.dest / "2024/11/11"
    folder.mkdir(parents=True)
    immutable(folder)
    write(settings.source / "2024-11-11_stuck.txt", b"stuck", OLD)
    engine, rec = run_once(settings)
    retried = rec.of(ev.Retried)
    assert [r.attempt for r in retried] == [1, 2, 3]
    assert all("EPERM" in r.error for r in retried)
    assert all(0.5 * settings.retry_base_delay * 2 ** (r.attempt - 1) <= r.delay for r in retried)
    records = engine.quarantine.list()
    assert len(records) == 1
    assert records[0].attempts == 4
    assert len(records[0].errors) == 4
    assert records[0].intended == str(folder / "2024-11-11_stuck.txt")
    assert engine.quarantine.file_path(records[0]).read_bytes() == b"stuck"
    snap = engine.snapshot()
    assert snap.totals.failed_attempts == 4
    assert snap.totals.retried == 3
    assert snap.error_rate == 1.0


def test_a_fault_that_clears_lets_the_retry_succeed(tmp_path, immutable):
    settings = make_settings(tmp_path, max_retries=50)
    folder = settings.dest / "2024/12/12"
    folder.mkdir(parents=True)
    immutable(folder)
    write(settings.source / "2024-12-12_later.txt", b"later", OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: rec.of(ev.Retried), what="a retry")
        snap = engine.snapshot()
        assert snap.queues.retry == 1
        assert snap.retry_head[0].path == "2024-12-12_later.txt"
        assert "EPERM" in snap.retry_head[0].last_error
        unmark(folder)
        wait_for((folder / "2024-12-12_later.txt").exists, what="the move once the fault clears")
        wait_for(lambda: engine.snapshot().queues.retry == 0, what="the retry queue to empty")
    assert engine.quarantine.list() == []


def test_an_immutable_source_folder_keeps_its_file_with_a_clear_error_until_cleared(tmp_path, immutable):
    # chattr +i on the source folder: the file can be neither moved out nor quarantined (EPERM).
    settings = make_settings(tmp_path, max_retries=1)
    write(settings.source / "2024-12-14_held.txt", b"held", OLD)
    immutable(settings.source)
    engine, rec = run_once(settings)
    assert (settings.source / "2024-12-14_held.txt").read_bytes() == b"held"
    assert files_under(settings.dest) == {} and engine.quarantine.list() == []
    [failed] = rec.of(ev.Failed)
    assert "EPERM" in failed.error and "could not be quarantined" in failed.error
    unmark(settings.source)
    engine, rec = run_once(settings)
    assert files_under(settings.source) == {}
    assert (settings.dest / "2024/12/14/2024-12-14_held.txt").read_bytes() == b"held"


def test_the_retry_queue_survives_a_restart(tmp_path, immutable):
    settings = make_settings(tmp_path, max_retries=50, retry_base_delay=5, retry_max_delay=5)
    folder = settings.dest / "2024/12/13"
    folder.mkdir(parents=True)
    immutable(folder)
    write(settings.source / "2024-12-13_persist.txt", b"p", OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: rec.of(ev.Retried), what="a retry")
    saved, _ = open_ledger(settings.state_dir).load_retries()  # in the state folder's ledger
    assert [(e.path, e.attempts) for e in saved] == [("2024-12-13_persist.txt", 1)]
    assert not (settings.state_dir / "retry.json").exists()
    with running(settings) as (engine2, _):
        snap = engine2.snapshot()
        assert [(r.path, r.attempts) for r in snap.retry_head] == [("2024-12-13_persist.txt", 1)]
    saved, _ = open_ledger(settings.state_dir).load_retries()
    assert [e.path for e in saved] == ["2024-12-13_persist.txt"]


def test_a_corrupt_retry_file_of_an_older_version_is_set_aside_and_the_engine_starts(settings):
    settings.state_dir.mkdir(exist_ok=True)
    (settings.state_dir / "retry.json").write_text("{ not json")
    write(settings.source / "2024-01-05_ok.txt", b"ok", OLD)
    engine, rec = run_once(settings)
    assert (settings.dest / "2024/01/05/2024-01-05_ok.txt").exists()
    assert (settings.state_dir / "retry.corrupt").exists()


def test_a_vanished_file_is_counted_not_failed(settings):
    engine = Engine(settings)
    # the coordinator would hand this path to a worker; it is gone by then
    result = engine.runner.move_one("2024-01-01_gone.txt", time.perf_counter())
    assert result.kind == "vanished"
    snap = engine.snapshot()
    assert snap.totals.vanished == 1
    assert snap.totals.failed_attempts == 0


def test_a_large_file_waits_until_it_fits_above_the_headroom_minimum(tmp_path, tmpfs):
    import subprocess

    dest = tmpfs("roomy", size="200m")
    settings = make_settings(tmp_path, dest=dest, quarantine=tmp_path / "q", min_free_percent=50)
    big = write(settings.source / "2024-07-07_big.bin", os.urandom(1024) * (120 * 1024), OLD)
    write(settings.source / "2024-07-08_small.txt", b"small", OLD)
    with running(settings) as (engine, rec):
        wait_for((dest / "2024/07/08/2024-07-08_small.txt").exists, what="the small file")
        wait_for(lambda: engine.snapshot().queues.retry == 1, what="the big file to wait")
        [waiting] = engine.snapshot().retry_head
        assert waiting.for_room and waiting.attempts == 0  # the faces say "waiting for room"
        assert not (dest / "2024/07/07/2024-07-07_big.bin").exists()
        assert list((dest / ".reorg-tmp").iterdir()) == []
        assert big.stat().st_size == 120 * 1024 * 1024
        assert engine.snapshot().totals.quarantined == 0
        subprocess.run(["mount", "-o", "remount,size=400m", str(dest)], check=True)
        wait_for(
            (dest / "2024/07/07/2024-07-07_big.bin").exists, timeout=30, what="the big file once it fits"
        )
    assert not big.exists()


def test_recovery_keeps_another_live_daemons_copy_in_progress_and_removes_dead_ones(tmp_path):
    # Two daemons (two sources) may share one destination, and so its staging folder.
    import subprocess
    import sys

    from reorg_tui.engine.dirs import Tree
    from reorg_tui.engine.move import STAGING, Mover

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        staging = tmp_path / "dest" / STAGING
        live = write(staging / f"{other.pid}-abcd1234-0.part", b"half")
        dead_pid = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
        )
        dead = write(staging / f"{int(dead_pid.stdout)}-abcd1234-1.part", b"stale")
        foreign = write(staging / "junk.part", b"?")  # no name a mover gives: not ours to remove
        assert Mover(Tree(str(tmp_path / "dest"))).recover() == 1
        assert live.exists() and not dead.exists() and foreign.exists()
        # the same for half-written records and state files (a shared quarantine)
        from reorg_tui.engine.store import remove_leftovers

        live_record = write(tmp_path / "q" / f".ID.json.{other.pid}.7.tmp", b"{")
        dead_record = write(tmp_path / "q" / f".ID.json.{int(dead_pid.stdout)}.7.tmp", b"{")
        assert remove_leftovers(tmp_path / "q") == 1
        assert live_record.exists() and not dead_record.exists()
    finally:
        other.kill()
        other.wait()


def test_a_fleets_recovery_keeps_a_recent_partial_copy_whatever_its_pid_says(tmp_path):
    # A fleet shares its destination with other hosts: a pid in a staging name is another host's
    # maybe, free here. A copy written to in the last hour stays; an older one is a crash's.
    import subprocess
    import sys

    from reorg_tui.engine.dirs import Tree
    from reorg_tui.engine.move import STAGING, Mover

    dead_pid = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )
    staging = tmp_path / "dest" / STAGING
    recent = write(staging / f"{dead_pid}-abcd1234-0.part", b"another host's, in progress")
    old = write(staging / f"{dead_pid}-abcd1234-1.part", b"a crash's", time.time() - 7200)
    assert Mover(Tree(str(tmp_path / "dest"))).recover(kept_younger=3600) == 1
    assert recent.exists() and not old.exists()
    assert Mover(Tree(str(tmp_path / "dest"))).recover() == 1  # a single host: its pid is the truth
    assert not recent.exists()
    # the same for half-written records in a shared quarantine
    from reorg_tui.engine.store import remove_leftovers

    writing = write(tmp_path / "q" / f".ID.json.{dead_pid}.7.tmp", b"{")
    crashed = write(tmp_path / "q" / f".ID.json.{dead_pid}.8.tmp", b"{", time.time() - 7200)
    assert remove_leftovers(tmp_path / "q", kept_younger=3600) == 1
    assert writing.exists() and not crashed.exists()


def test_a_retry_queue_naming_paths_outside_the_source_is_not_followed(settings, caplog):
    # A state file is data, not trusted code: an entry pointing outside the source is dropped.
    settings.state_dir.mkdir(exist_ok=True)
    outside = write(settings.source.parent / "2024-01-06_outside.txt", b"keep", OLD)
    entries = [
        {"path": p, "attempts": 1, "next_try": 0.0, "last_error": "x"}
        for p in ("../2024-01-06_outside.txt", "/etc/2024-01-06_x", "a\u0000b", "2024-01-07_ok.txt")
    ]
    (settings.state_dir / "retry.json").write_text(json.dumps({"version": 1, "entries": entries}))
    write(settings.source / "2024-01-07_ok.txt", b"ok", OLD)
    run_once(settings)
    assert caplog.text.count("ignored an entry with a bad path") == 3
    assert (settings.state_dir / "retry.json.imported").exists()  # imported once, kept aside
    assert outside.read_bytes() == b"keep"
    assert files_under(settings.dest) == {
        "2024/01/07/2024-01-07_ok.txt": files_under(settings.dest)["2024/01/07/2024-01-07_ok.txt"]
    }


@pytest.mark.parametrize("short_of", ["space", "inodes"])
def test_the_free_space_minimum_is_a_floor_no_copy_crosses(tmp_path, tmpfs, short_of):
    """Copies of small files, many at once, into a small destination: free space (and free inodes)
    never go under --min-free-percent, looked at after every copy; what does not fit waits in the
    source, whole, and arrives once there is room."""
    if short_of == "space":
        dest, files, size = tmpfs("small", size="8m"), 40, 256 * 1024  # 10 MiB offered, 4 MiB may land
    else:
        dest, files, size = tmpfs("few", size="64m", inodes=60), 80, 100  # 80 files, 25 may land
    settings = make_settings(
        tmp_path, dest=dest, quarantine=tmp_path / "q", min_free_percent=50, retry_max_delay=0.5
    )
    for i in range(files):  # one date: its folders are made once (a folder's inode is not held for)
        write(settings.source / f"2024-07-01_f{i:03d}.bin", os.urandom(size), OLD)
    lowest = [100.0]

    def after_each_copy(events: list[ev.Event]) -> None:
        if any(isinstance(e, ev.Moved) for e in events):
            st = os.statvfs(dest)
            free = st.f_bavail / st.f_blocks if short_of == "space" else st.f_favail / st.f_files
            lowest[0] = min(lowest[0], 100 * free)

    def landed() -> int:
        return len([p for p in files_under(dest) if p.startswith("2024/")])

    with running(settings) as (engine, rec):
        engine.subscribe(after_each_copy)
        waited = lambda: {e.source for e in rec.of(ev.Waiting)}  # noqa: E731
        wait_for(lambda: len(waited()) + landed() == files, what="every file to land or wait for room")
        assert 0 < landed() < files and lowest[0] >= 50, (landed(), lowest)
        landed_then = landed()
        assert len(files_under(settings.source)) == files - landed_then  # the rest whole in the source
        assert not rec.of(ev.Retried) and engine.snapshot().totals.quarantined == 0
        subprocess.run(["mount", "-o", "remount,size=256m,nr_inodes=4000", str(dest)], check=True)
        wait_for(lambda: not files_under(settings.source), timeout=30, what="the rest once there is room")
