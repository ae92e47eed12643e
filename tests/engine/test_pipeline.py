"""The engine end to end, on real folders: every file ends in exactly one place, bytes intact."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from reorg_tui.engine import events as ev
from reorg_tui.engine.engine import Engine
from reorg_tui.engine.lock import AlreadyRunning
from reorg_tui.engine.rename_lane import RenameLane
from tests.conftest import OLD, files_under, make_settings, run_once, running, wait_for, write


def test_mixed_backlog_ends_with_every_file_in_its_place(settings):
    src, dest = settings.source, settings.dest
    good = {f"2024-05-0{i}_report {i}.txt": os.urandom(100 + i) for i in range(1, 6)}
    for name, data in good.items():
        write(src / name, data, OLD)
    write(src / "2024-02-30_bad-date.txt", b"no such day", OLD)
    untouched = {
        "notes.txt": b"no date",
        "2024-05-01report.txt": b"no underscore",
        ".2024-05-01_hidden": b"hidden",
        "2024-05-01_partial.part": b"partial",
        "2024-05-01_x.tmp": b"temp",
        "2024-05-01_y.crdownload": b"download",
        "2024-05-01_z~": b"backup",
    }
    for name, data in untouched.items():
        write(src / name, data, OLD)
    existing = write(dest / "2024/05/01/2024-05-01_report 1.txt", b"already here")
    collider = good["2024-05-01_report 1.txt"]

    engine, rec = run_once(settings)

    # Moved: each good file at its dated folder, bytes unchanged; the collision got a free name.
    for name, data in good.items():
        y, m, d = name[:4], name[5:7], name[8:10]
        target = dest / y / m / d / name
        if name == "2024-05-01_report 1.txt":
            target = dest / y / m / d / "2024-05-01_report 1 (1).txt"
        assert target.read_bytes() == data, name
        assert not (src / name).exists()
    assert existing.read_bytes() == b"already here"
    assert (dest / "2024/05/01/2024-05-01_report 1 (1).txt").read_bytes() == collider
    # Ignored: still in the source, untouched.
    for name, data in untouched.items():
        assert (src / name).read_bytes() == data
    # The impossible date went to quarantine at once, with its reason and no retries.
    records = engine.quarantine.list()
    assert [r.name for r in records] == ["2024-02-30_bad-date.txt"]
    assert "not a real date" in records[0].reason
    assert records[0].attempts == 0
    assert engine.quarantine.file_path(records[0]).read_bytes() == b"no such day"
    snap = engine.snapshot()
    assert snap.totals.moved == 5
    assert snap.totals.ignored == len(untouched)
    assert snap.totals.quarantined == 1
    assert snap.totals.retried == 0
    assert snap.quarantine.count == 1
    assert not (dest / ".reorg-tmp").exists() or not list((dest / ".reorg-tmp").iterdir())


def test_files_dropped_while_running_move_within_poll_plus_settle(settings):
    with running(settings) as (engine, rec):
        started = time.monotonic()
        write(settings.source / "2025-01-02_live.bin", b"live data")
        target = settings.dest / "2025/01/02/2025-01-02_live.bin"
        wait_for(target.exists, timeout=settings.poll_interval + settings.settle + 2, what="the move")
        assert time.monotonic() - started < settings.poll_interval + settings.settle + 2
        assert target.read_bytes() == b"live data"
        assert not (settings.source / "2025-01-02_live.bin").exists()
        moved = rec.of(ev.Moved)
        assert [Path(m.destination) for m in moved] == [target]


def test_scan_alone_finds_files_when_events_are_missing(tmp_path):
    # Events are only hints: with the watcher gone, the periodic rescan still finds the file.
    settings = make_settings(tmp_path, poll_interval=0.3)
    with running(settings) as (engine, _):
        engine.watcher.stop()
        write(settings.source / "2025-01-03_polled.txt", b"p")
        wait_for((settings.dest / "2025/01/03/2025-01-03_polled.txt").exists, what="rescan")


def test_a_quiet_folder_is_not_listed_again_until_it_changes(tmp_path):
    # Idle cost: an unchanged source folder costs a stat per poll, not a listing of every name.
    settings = make_settings(tmp_path, poll_interval=0.1)
    for i in range(300):
        write(settings.source / f"ignored-{i}.txt", b"", OLD)
    os.utime(settings.source, ns=(0, time.time_ns() - 5_000_000_000))  # quiet for a while
    with running(settings) as (engine, _):
        engine.watcher.stop()  # no events: only the polls can find the file below
        wait_for(lambda: engine.snapshot().scans >= 1, what="the first scan")
        time.sleep(1.5)  # 15 polls
        assert engine.snapshot().scans <= 2
        write(settings.source / "2025-01-04_noticed.txt", b"n", OLD)  # the folder's mtime moves
        wait_for((settings.dest / "2025/01/04/2025-01-04_noticed.txt").exists, what="the rescan")
        assert engine.snapshot().scans >= 2


def test_slow_writer_is_moved_only_when_complete(tmp_path):
    settings = make_settings(tmp_path, settle=1.0)
    path = settings.source / "2025-03-04_slow.log"
    chunks = [os.urandom(1000) for _ in range(8)]
    with running(settings) as (engine, _):
        with open(path, "wb") as handle:  # held open: no close-after-write until the end
            for chunk in chunks:
                handle.write(chunk)
                handle.flush()
                time.sleep(0.4)
                assert path.exists(), "moved while still being written"
        target = settings.dest / "2025/03/04/2025-03-04_slow.log"
        wait_for(target.exists, what="the finished file to move")
        assert target.read_bytes() == b"".join(chunks)
        assert not path.exists()


def test_pause_stops_moves_and_resume_restarts_them(settings):
    with running(settings) as (engine, rec):
        engine.pause()
        assert engine.snapshot().state == "paused"
        write(settings.source / "2025-06-07_wait.txt", b"w", OLD)
        time.sleep(settings.poll_interval + settings.settle + 0.5)
        assert (settings.source / "2025-06-07_wait.txt").exists()
        assert engine.snapshot().totals.moved == 0
        engine.resume()
        wait_for((settings.dest / "2025/06/07/2025-06-07_wait.txt").exists, what="move after resume")
        assert [e.reason for e in rec.of(ev.Paused)] == ["operator"]
        assert [e.reason for e in rec.of(ev.Resumed)] == ["operator"]


def test_symlinks_and_fifos_are_never_opened_or_moved(settings, tmp_path):
    secret = write(tmp_path / "secret.txt", b"outside")
    os.symlink(secret, settings.source / "2024-01-01_link.txt")
    os.mkfifo(settings.source / "2024-01-01_fifo")
    write(settings.source / "2024-01-01_real.txt", b"real", OLD)
    engine, _ = run_once(settings)  # a FIFO opened for reading would hang this run
    assert os.path.islink(settings.source / "2024-01-01_link.txt")
    assert (settings.source / "2024-01-01_fifo").exists()
    assert (settings.dest / "2024/01/01/2024-01-01_real.txt").read_bytes() == b"real"
    assert files_under(settings.dest) == {
        "2024/01/01/2024-01-01_real.txt": files_under(settings.dest)["2024/01/01/2024-01-01_real.txt"]
    }
    assert secret.read_bytes() == b"outside"
    assert engine.snapshot().totals.ignored == 2


def test_subfolders_are_walked_only_when_recursive(tmp_path):
    settings = make_settings(tmp_path)
    write(settings.source / "sub/2024-07-08_deep.txt", b"deep", OLD)
    run_once(settings)
    assert (settings.source / "sub/2024-07-08_deep.txt").exists()
    run_once(settings.with_(recursive=True))
    assert (settings.dest / "2024/07/08/2024-07-08_deep.txt").read_bytes() == b"deep"


def test_layout_template_and_custom_pattern(tmp_path):
    settings = make_settings(
        tmp_path, layout="{year}/{month}", pattern=r"^IMG_(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"
    )
    write(settings.source / "IMG_20230915_1200.jpg", b"jpg", OLD)
    write(settings.source / "2023-09-15_other.jpg", b"no match", OLD)
    run_once(settings)
    assert (settings.dest / "2023/09/IMG_20230915_1200.jpg").read_bytes() == b"jpg"
    assert (settings.source / "2023-09-15_other.jpg").exists()


@pytest.mark.parametrize("policy", ["rename", "skip", "dedupe", "quarantine"])
def test_conflict_policies(tmp_path, policy):
    settings = make_settings(tmp_path, on_conflict=policy)
    folder = settings.dest / "2024/01/02"
    write(folder / "2024-01-02_same.txt", b"same bytes")
    write(folder / "2024-01-02_diff.txt", b"old bytes")
    write(settings.source / "2024-01-02_same.txt", b"same bytes", OLD)
    write(settings.source / "2024-01-02_diff.txt", b"new bytes", OLD)
    engine, _ = run_once(settings)
    dest_files = {p.name: p.read_bytes() for p in folder.iterdir()}
    left = {p.name for p in settings.source.iterdir()}
    quarantined = {r.name for r in engine.quarantine.list()}
    assert dest_files["2024-01-02_same.txt"] == b"same bytes"
    assert dest_files["2024-01-02_diff.txt"] == b"old bytes"  # never overwritten
    if policy == "rename":
        assert dest_files["2024-01-02_same (1).txt"] == b"same bytes"
        assert dest_files["2024-01-02_diff (1).txt"] == b"new bytes"
        assert left == set()
    elif policy == "skip":
        assert len(dest_files) == 2
        assert left == {"2024-01-02_same.txt", "2024-01-02_diff.txt"}
        assert engine.snapshot().totals.skipped == 2
    elif policy == "dedupe":
        assert dest_files == {
            "2024-01-02_same.txt": b"same bytes",
            "2024-01-02_diff.txt": b"old bytes",
            "2024-01-02_diff (1).txt": b"new bytes",
        }
        assert left == set()
    else:
        assert len(dest_files) == 2
        assert quarantined == {"2024-01-02_same.txt", "2024-01-02_diff.txt"}
        assert left == set()


def test_skipped_files_are_not_retried_on_every_rescan(tmp_path):
    settings = make_settings(tmp_path, on_conflict="skip", poll_interval=0.1)
    write(settings.dest / "2024/01/02/2024-01-02_a.txt", b"x")
    write(settings.source / "2024-01-02_a.txt", b"y", OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: engine.snapshot().scans >= 5, what="several rescans")
        assert len(rec.of(ev.Skipped)) == 1


def test_one_inode_under_both_names_after_an_interrupted_link_publish_is_counted_once(settings):
    # An interrupted link-then-unlink publish: the same inode under both names. Known by identity.
    linked = write(settings.source / "2024-03-04_linked.bin", b"linked", OLD)
    os.makedirs(settings.dest / "2024/03/04")
    os.link(linked, settings.dest / "2024/03/04/2024-03-04_linked.bin")
    # A partial copy left in the staging folder by a process that is gone.
    write(settings.dest / f".reorg-tmp/{2**22 + 1}-deadbeef-0.part", b"half a fi")  # no such pid

    engine, _ = run_once(settings)

    assert files_under(settings.source) == {}
    assert sorted(files_under(settings.dest)) == ["2024/03/04/2024-03-04_linked.bin"]
    assert engine.snapshot().totals.duplicates == 1


@pytest.mark.parametrize("policy", ["skip", "quarantine", "rename"])
def test_an_identical_file_the_ledger_does_not_claim_meets_the_conflict_policy(tmp_path, policy):
    """A re-delivered copy with the same bytes and mtime as a file already at its destination is
    new work, not a crash's leftover: nothing guesses from bytes, and --on-conflict says what
    happens (skip: it stays; quarantine: it is quarantined; rename: it arrives as name (1))."""
    settings = make_settings(tmp_path, on_conflict=policy)
    data = os.urandom(5000)
    src = write(settings.source / "2024-03-03_same.bin", data, OLD)
    dst = write(settings.dest / "2024/03/03/2024-03-03_same.bin", data)
    st = src.stat()
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

    run_once(settings)

    assert dst.read_bytes() == data
    left = files_under(settings.source)
    arrived = sorted(files_under(settings.dest / "2024"))
    quarantined = [p for p in files_under(settings.quarantine) if not p.endswith(".json")]
    if policy == "skip":
        assert list(left) == ["2024-03-03_same.bin"] and len(arrived) == 1 and not quarantined
    elif policy == "quarantine":
        assert not left and len(arrived) == 1 and len(quarantined) == 1
    else:
        assert not left and arrived == ["03/03/2024-03-03_same (1).bin", "03/03/2024-03-03_same.bin"]


def test_second_instance_on_the_same_source_refuses(tmp_path):
    settings = make_settings(tmp_path)
    other_state = make_settings(tmp_path, state_dir=tmp_path / "elsewhere")
    with running(settings), pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
        Engine(other_state).run(threading.Event())
    # the first one let go on stop: a new one may start
    run_once(settings)


def test_snapshot_reports_throughput_timing_and_queues(settings):
    for i in range(300):
        write(settings.source / f"2024-08-{1 + i % 28:02d}_f{i}.dat", b"x" * 1000, OLD)
    engine, rec = run_once(settings)
    snap = engine.snapshot()
    assert snap.totals.moved == 300
    assert snap.totals.bytes == 300_000
    assert snap.files_per_second[10] > 0
    assert snap.bytes_per_second[10] == pytest.approx(snap.files_per_second[10] * 1000)
    assert 0 < snap.timing.p50 <= snap.timing.p95 <= snap.timing.max
    assert snap.timing.mean > 0
    assert snap.error_rate == 0
    assert snap.queues.ready == snap.queues.in_flight == snap.queues.retry == 0
    assert len(rec.of(ev.Moved)) == 300
    assert snap.to_dict()["totals"]["moved"] == 300
    moves = [e.at for e in rec.of(ev.Moved)]  # when the first and the last file arrived
    assert (snap.first_move_at, snap.last_move_at) == (min(moves), max(moves))


def test_a_dead_watcher_is_noticed_and_restarted(tmp_path):
    settings = make_settings(tmp_path, poll_interval=3600)  # no rescans: only events can find files
    with running(settings) as (engine, rec):
        wait_for(lambda: engine.snapshot().scans >= 1, what="the first scan")
        assert engine.snapshot().watcher == "inotify"
        engine.watcher._observer.stop()  # the observer thread dies, as on an internal error
        wait_for(lambda: rec.of(ev.Warning), what="the restart warning")
        assert "restarting" in rec.of(ev.Warning)[0].message
        write(settings.source / "2024-05-05_after-restart.txt", b"r")
        wait_for(
            (settings.dest / "2024/05/05/2024-05-05_after-restart.txt").exists, what="an event-driven move"
        )


def test_the_first_move_starts_before_a_large_folder_is_listed(tmp_path):
    settings = make_settings(tmp_path, batch_size=64)
    for i in range(12_000):
        (settings.source / f"2024-06-{1 + i % 28:02d}_{i}").touch()
        os.utime(settings.source / f"2024-06-{1 + i % 28:02d}_{i}", (OLD, OLD))
    with running(settings) as (engine, _):
        wait_for(lambda: engine.snapshot().totals.moved > 0, what="the first move")
        snap = engine.snapshot()
        assert snap.scans == 0, "the first full listing had already finished: the scan did not stream"
        wait_for(lambda: engine.snapshot().totals.moved == 12_000, timeout=60, what="the drain")
    assert not any(settings.source.iterdir())


def test_a_file_the_quarantine_refuses_stays_in_the_source(settings, immutable):
    settings.quarantine.mkdir(exist_ok=True)
    immutable(settings.quarantine)  # chattr +i: even root cannot add to it
    write(settings.source / "2024-02-31_nowhere.txt", b"n", OLD)
    engine, rec = run_once(settings)
    [failed] = rec.of(ev.Failed)
    assert "could not be quarantined" in failed.error
    assert (settings.source / "2024-02-31_nowhere.txt").read_bytes() == b"n"


def test_a_batch_from_more_source_folders_than_the_lane_holds_moves_every_file_once(tmp_path):
    """A batch keeps its source folders open (RenameLane.HELD at most, then gives them back and
    lends afresh): with 40 subfolders in one batch, every file still arrives once, bytes intact."""
    settings = make_settings(tmp_path, recursive=True)
    (settings.dest / "2024/03/04").mkdir(parents=True)  # an existing folder: the fast lane renames
    made = {}
    for i in range(40):
        made[f"2024-03-04_f{i:02d}.txt"] = os.urandom(32)
        write(
            settings.source / f"sub{i:02d}" / f"2024-03-04_f{i:02d}.txt",
            made[f"2024-03-04_f{i:02d}.txt"],
            OLD,
        )
    assert len(made) > RenameLane.HELD
    run_once(settings)
    arrived = {Path(p).name: p for p in files_under(settings.dest)}
    assert set(arrived) == set(made)
    for name, data in made.items():
        assert (settings.dest / "2024/03/04" / name).read_bytes() == data
    assert not files_under(settings.source)


def test_a_batch_is_no_longer_busy_by_the_time_its_events_arrive(settings):
    # A face told that files moved reads the snapshot to show it: the batch that moved them must
    # not still count as a busy worker, nor its files as in flight.
    for i in range(5):
        write(settings.source / f"2024-08-0{1 + i}_b{i}.dat", b"b", OLD)
    engine = Engine(settings)
    seen: list[tuple[int, int]] = []

    def on_events(events: list[ev.Event]) -> None:
        if any(isinstance(e, ev.Moved) for e in events):
            snap = engine.snapshot()
            seen.append((snap.workers_busy, snap.queues.in_flight))

    engine.subscribe(on_events)
    engine.run(threading.Event(), once=True)
    assert seen and seen[-1] == (0, 0)


def test_a_watcher_hint_for_a_file_in_an_ignored_folder_is_not_taken(tmp_path):
    """--recursive watches every folder, ignored ones too: a hint from one must meet the same
    rule as the scan (which never walks an ignored folder), or the file moves all the same."""
    from reorg_tui.engine.settings import DEFAULT_IGNORE

    settings = make_settings(tmp_path, recursive=True, ignore=(*DEFAULT_IGNORE, "drafts"), poll_interval=60)
    for folder in ("drafts", "sub"):
        (settings.source / folder).mkdir()
    with running(settings) as (engine, _):
        wait_for(lambda: engine.watcher.mode == "inotify", what="the watcher")
        hidden = write(settings.source / "drafts/2024-05-05_draft.txt", b"draft")
        write(settings.source / "sub/2024-05-05_kept.txt", b"kept")  # written after: its hint too
        wait_for((settings.dest / "2024/05/05/2024-05-05_kept.txt").exists, what="the other file to move")
        # Each coordinator round takes every hint gathered so far, and the file written first was
        # as settled as the other: after one more full scan its hint has been looked at.
        rounds = engine.snapshot().scans
        engine.intake.scan_now.set()
        wait_for(lambda: engine.snapshot().scans >= rounds + 1, what="a scan")
    assert hidden.read_bytes() == b"draft"
    assert not (settings.dest / "2024/05/05/2024-05-05_draft.txt").exists()
