"""Counters, sliding windows, time quantiles and the histogram, driven with a fake clock; then
what real engine runs count."""

from __future__ import annotations

import dataclasses
import json
import os
import tracemalloc

import pytest

from reorg_tui.engine import events as ev
from reorg_tui.engine.alerts import AlertRules, evaluate
from reorg_tui.engine.metrics import BUCKETS, ERROR_WINDOW, WINDOWS, Metrics, RetryItem, Snapshot, Timing
from reorg_tui.present import brief, describe, event_fields
from reorg_tui.status import check
from reorg_tui.tui.sample import NOW, snapshot
from tests.conftest import OLD, make_settings, run_once, running, wait_for, write

T = 1_700_000_000.0  # when the engine started, a whole second


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T)


@pytest.fixture
def metrics(clock) -> Metrics:
    return Metrics(clock=clock)


def moved_at(metrics: Metrics, clock: Clock, when: float, files: int, nbytes: int = 0) -> None:
    clock.now = when
    metrics.record(moved=files, nbytes=nbytes, attempts=files, failures=0, durations=[0.01] * files)


def rates(metrics: Metrics) -> tuple[dict[int, float], dict[int, float]]:
    _, files, nbytes, _, _, _ = metrics.read()
    return files, nbytes


def test_each_rate_counts_the_files_moved_within_its_window(metrics, clock):
    assert WINDOWS == (10, 60, 300)
    moved_at(metrics, clock, T + 50, 1000, 10**9)  # more than 300 s before the reading
    moved_at(metrics, clock, T + 200.5, 300, 3000)
    moved_at(metrics, clock, T + 350.5, 60, 600)
    moved_at(metrics, clock, T + 391.0, 10, 100)  # the oldest second of the 10 s window
    clock.now = T + 400.5
    files, nbytes = rates(metrics)
    assert files == {10: 10 / 10, 60: 70 / 60, 300: 370 / 300}
    assert nbytes == {10: 100 / 10, 60: 700 / 60, 300: 3700 / 300}


def test_the_moves_of_the_current_second_count_at_once(metrics, clock):
    moved_at(metrics, clock, T + 400.1, 50)
    clock.now = T + 400.9
    files, _ = rates(metrics)
    assert files[10] == 50 / 10


def test_just_after_start_a_rate_divides_by_the_time_running_not_the_whole_window(metrics, clock):
    moved_at(metrics, clock, T + 1.5, 20)
    clock.now = T + 2.0
    files, _ = rates(metrics)
    assert files == {10: 10.0, 60: 10.0, 300: 10.0}


def test_in_the_first_second_a_rate_is_not_inflated(metrics, clock):
    moved_at(metrics, clock, T + 0.2, 5)
    files, _ = rates(metrics)
    assert files[10] == 5.0  # 5 files in 0.2 s is not shown as 25 files a second


def test_an_idle_engine_shows_zero_once_the_windows_have_passed(metrics, clock):
    moved_at(metrics, clock, T + 10, 100)
    clock.now = T + 10 + max(WINDOWS)
    files, _ = rates(metrics)
    assert files == {10: 0.0, 60: 0.0, 300: 0.0}
    moved_at(metrics, clock, T + 10 + 302, 1)  # the same slot of the ring, reused
    files, _ = rates(metrics)
    assert files[10] == 1 / 10


def test_history_gives_the_last_300_seconds_oldest_first(metrics, clock):
    clock.now = T + 500.5
    metrics.record(moved=3, nbytes=30, attempts=4, failures=1, durations=[0.1] * 3)
    clock.now = T + 501.2
    history = metrics.read()[5]
    assert len(history) == max(WINDOWS)
    assert history[-2:] == ((3, 30, 4, 1), (0, 0, 0, 0))


def test_the_error_rate_is_failed_attempts_over_attempts_in_the_last_minute(metrics, clock):
    clock.now = T + 100.5
    metrics.record(moved=15, nbytes=0, attempts=20, failures=5, durations=[0.01] * 15)
    clock.now = T + 100.5 + ERROR_WINDOW - 1
    assert metrics.read()[3] == 0.25
    clock.now = T + 100.5 + ERROR_WINDOW
    assert metrics.read()[3] == 0.0  # a minute later, the failures are history


def test_no_attempts_is_no_error_rate(metrics, clock):
    clock.now = T + 100
    assert metrics.read()[3] == 0.0


def test_time_per_file_shows_the_typical_move_and_the_slow_tail(metrics, clock):
    clock.now = T + 10
    metrics.record(moved=100, nbytes=0, attempts=100, failures=0, durations=[0.01] * 90 + [1.0] * 10)
    timing = metrics.read()[4]
    assert timing.p50 == 0.01 and timing.p95 == 1.0 and timing.max == 1.0
    assert timing.mean == pytest.approx((90 * 0.01 + 10 * 1.0) / 100)


def test_one_slow_move_in_a_hundred_shows_in_the_maximum_not_in_p95(metrics, clock):
    clock.now = T + 10
    metrics.record(moved=100, nbytes=0, attempts=100, failures=0, durations=[0.01] * 99 + [5.0])
    timing = metrics.read()[4]
    assert timing.p95 == 0.01 and timing.max == 5.0


def test_no_moves_is_zero_time_not_an_error(metrics):
    assert metrics.read()[4] == Timing(mean=0.0, p50=0.0, p95=0.0, max=0.0)


def test_quantiles_follow_recent_moves_and_memory_stays_constant_however_long_it_runs(metrics, clock):
    def batches(count: int, seconds: float) -> None:
        for _ in range(count):
            clock.now += 1  # a new second each time: the ring keeps turning
            metrics.record(
                moved=10, nbytes=10, attempts=11, failures=1, durations=[seconds] * 10, reasons=["EIO"]
            )

    batches(400, 1.0)  # slow at first; fills the samples and the ring
    tracemalloc.start()
    try:
        batches(400, 0.001)
        after_some = tracemalloc.get_traced_memory()[0]
        batches(1200, 0.001)
        after_more = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_more - after_some < 4096  # 12,000 more moves cost no more memory
    totals, _, _, _, timing, _ = metrics.read()
    assert totals.moved == 20_000 and totals.failed_attempts == 2000
    assert timing.p50 == timing.p95 == 0.001  # the slow start has left the sample
    assert timing.max == 1.0  # but the slowest move is remembered
    assert timing.mean == pytest.approx((4000 * 1.0 + 16_000 * 0.001) / 20_000)


def test_the_histogram_counts_each_move_in_its_bucket_cumulatively(metrics, clock):
    durations = [0.0005, 0.0006, 0.001, 0.2, 100.0]  # on a bound, between two, past the last
    metrics.record(
        moved=5, nbytes=0, attempts=8, failures=3, durations=durations, reasons=["EIO", "EIO", "EACCES"]
    )
    counts, total, reasons = metrics.histogram()
    assert len(counts) == len(BUCKETS) + 1  # then +Inf
    by_bound = dict(zip(BUCKETS, counts, strict=False))
    assert by_bound[0.0005] == 1  # "le": a move of exactly 0.5 ms is in the 0.5 ms bucket
    assert by_bound[0.001] == 3
    assert by_bound[0.1] == 3 and by_bound[0.25] == 4
    assert by_bound[60.0] == 4 and counts[-1] == 5
    assert total == pytest.approx(sum(durations))
    assert reasons == {"EIO": 2, "EACCES": 1}


def test_the_totals_add_up_and_ignored_is_the_last_scans_count(metrics, clock):
    metrics.record(moved=3, nbytes=300, attempts=5, failures=2, durations=[0.1] * 3)
    metrics.add(skipped=2, vanished=1)
    metrics.add(skipped=1, quarantined=1)
    metrics.set_ignored(7)
    metrics.set_ignored(4)
    totals = metrics.read()[0]
    assert (totals.moved, totals.bytes, totals.failed_attempts) == (3, 300, 2)
    assert (totals.skipped, totals.vanished, totals.quarantined, totals.ignored) == (3, 1, 1, 4)


def test_a_snapshot_read_back_from_json_is_the_same_snapshot():
    # As snapshot.json and `status --json` carry it; a file in flight has no next try.
    snap = dataclasses.replace(
        snapshot(),
        retry_head=(
            RetryItem("2024-01-01_waits.txt", 2, NOW + 6, "move: EBUSY Device or resource busy"),
            RetryItem("2024-01-02_in-flight.txt", 1, None, "move: EIO Input/output error"),
        ),
    )
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["retry_head"][1]["next_try"] is None
    assert Snapshot.from_dict(data) == snap


# ---- the same numbers from real engine runs ----------------------------------------------------


def test_files_quarantined_at_once_count_in_the_error_rate_with_their_reason(tmp_path):
    settings = make_settings(tmp_path, on_conflict="quarantine")
    for day in ("01", "02", "03"):
        write(settings.source / f"2024-03-{day}_fine.txt", b"fine", OLD)
    write(settings.source / "2024-02-30_impossible.txt", b"no such day", OLD)
    write(settings.dest / "2024/03/04/2024-03-04_taken.txt", b"already here")
    write(settings.source / "2024-03-04_taken.txt", b"another", OLD)
    engine, _ = run_once(settings)
    snap = engine.snapshot()
    assert (snap.totals.moved, snap.totals.quarantined) == (3, 2)
    assert snap.error_rate == 2 / 5  # what the pane, status and reorg_error_ratio show
    assert (snap.totals.attempts, snap.totals.failed_attempts) == (5, 2)
    assert snap.failures_by_reason.get("invalid_date") == 1
    assert snap.failures_by_reason.get("collision") == 1
    assert "error_rate" in evaluate(snap, AlertRules(error_rate=0.05))


def test_waiting_for_room_is_no_attempt_and_raises_no_error_rate_alert(tmp_path, tmpfs):
    dest = tmpfs("full", size="1m")
    settings = make_settings(tmp_path, dest=dest, quarantine=tmp_path / "q", min_free_percent=0)
    write(settings.source / "2024-10-10_big.bin", os.urandom(2 * 1024 * 1024), OLD)
    write(settings.source / "2024-10-11_small.txt", b"fits", OLD)
    with running(settings) as (engine, rec):
        wait_for((dest / "2024/10/11/2024-10-11_small.txt").exists, what="the small file")
        wait_for(lambda: len(rec.of(ev.Waiting)) >= 6, what="the big file to wait for room, again and again")
        snap = engine.snapshot()
    assert snap.error_rate == 0.0
    assert "error_rate" not in evaluate(snap, AlertRules(error_rate=0.05))
    assert "ENOSPC" not in snap.failures_by_reason
    assert (snap.totals.attempts, snap.totals.failed_attempts, snap.totals.retried) == (1, 0, 0)


def test_a_file_given_a_collision_name_is_counted_and_logged_as_renamed(tmp_path):
    # --on-conflict rename, the default; no disk alert, whatever this machine has free
    settings = make_settings(tmp_path, alert_disk_free_percent=0)
    write(settings.dest / "2024/03/04/2024-03-04_taken.txt", b"already here")
    write(settings.source / "2024-03-04_taken.txt", b"another", OLD)
    write(settings.source / "2024-03-05_free.txt", b"free", OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: len(rec.of(ev.Moved)) == 2, what="both moves")
        assert engine.snapshot().totals.renamed == 1
        wait_for(lambda: "1 renamed" in check(settings.state_dir).line, what="status to say so")
        health = check(settings.state_dir)
    assert health.label == "healthy"
    assert "moved 2 (11 Bytes, 1 renamed)" in health.line
    [renamed] = [e for e in rec.of(ev.Moved) if e.renamed]
    [plain] = [e for e in rec.of(ev.Moved) if not e.renamed]
    assert renamed.destination == str(settings.dest / "2024/03/04/2024-03-04_taken (1).txt")
    assert plain.destination == str(settings.dest / "2024/03/05/2024-03-05_free.txt")
    assert describe(renamed).endswith(", renamed: the name was taken)")
    assert "renamed" not in describe(plain)
    assert event_fields(renamed)["renamed"] == "2024-03-04_taken (1).txt"
    assert "renamed" not in event_fields(plain)
    assert (brief(renamed) or "").startswith("renamed     2024-03-04_taken.txt → ")
