"""The backoff schedule and the retry queue, driven directly: times are arguments (a fake clock),
and the state file is a real file under tmp_path."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reorg_tui.engine.retry import MAX_ERRORS_KEPT, RetryEntry, RetryQueue, backoff

T = 1_700_000_000.0  # 2023-11-14T22:13:20Z
A, B, C = "2024-01-01_a.txt", "2024-01-02_b.txt", "2024-01-03_c.txt"


@pytest.fixture
def queue(tmp_path) -> RetryQueue:
    return RetryQueue(tmp_path / "retry.json")


def restarted(queue: RetryQueue) -> RetryQueue:
    """The queue a new daemon process reads back from the same state file."""
    queue.save()
    again = RetryQueue(queue.path)
    again.load()
    return again


@given(st.integers(min_value=1, max_value=200), st.floats(0.01, 10), st.floats(10, 600), st.floats(0, 1))
def test_backoff_grows_is_capped_and_jittered(attempt, base, cap, roll):
    delay = backoff(attempt, base, cap, rng=lambda: roll)
    full = min(cap, base * 2 ** (attempt - 1))
    assert 0.5 * full <= delay <= full + 1e-9
    assert backoff(attempt + 1, base, cap, rng=lambda: 1.0) >= backoff(attempt, base, cap, rng=lambda: 1.0)


def test_a_failed_file_comes_back_only_once_its_delay_is_over(queue):
    queue.schedule(A, 1, 5.0, "move: EIO Input/output error", T)
    assert queue.next_due() == T + 5.0
    assert queue.pop_due(T + 4.99, limit=10) == []
    assert queue.pop_due(T + 5.0, limit=10) == [A]
    # Handed to a worker, it is still known (a scan must not offer it again) until forgotten.
    assert A in queue and len(queue) == 1 and queue.attempts(A) == 1


def test_a_file_handed_out_is_not_handed_out_again_until_it_fails_again(queue):
    queue.schedule(A, 1, 5.0, "EIO", T)
    assert queue.pop_due(T + 5.0, limit=10) == [A]
    assert queue.pop_due(T + 3600, limit=10) == []
    assert queue.next_due() is None  # nothing to wake up for while it is in flight
    assert queue.head(1)[0].next_try is None  # in flight: no time
    queue.schedule(A, 2, 10.0, "EIO", T + 6)
    assert queue.next_due() == T + 16
    assert queue.pop_due(T + 16, limit=10) == [A]


def test_files_come_back_soonest_first_and_at_most_limit_at_a_time(queue):
    for rel, delay in ((A, 3.0), (B, 1.0), (C, 2.0)):
        queue.schedule(rel, 1, delay, "EIO", T)
    assert queue.pop_due(T + 10, limit=2) == [B, C]
    assert queue.next_due() == T + 3.0
    assert queue.pop_due(T + 10, limit=2) == [A]


def test_the_latest_schedule_of_a_file_wins(queue):
    queue.schedule(A, 1, 1.0, "EIO", T)
    queue.schedule(A, 1, 10.0, "ENOSPC", T)  # no room: a longer wait before the first one came
    assert queue.pop_due(T + 1.0, limit=10) == []
    assert queue.pop_due(T + 10.0, limit=10) == [A]
    assert len(queue) == 1
    queue.schedule(B, 1, 1.0, "EIO", T)
    queue.schedule(B, 1, 10.0, "ENOSPC", T)
    assert queue.next_due() == T + 10.0  # the engine does not wake up for the earlier time


def test_each_failure_is_kept_with_its_utc_time_the_newest_last(queue):
    assert queue.attempts(A) == 0 and queue.errors(A) == []
    queue.schedule(A, 1, 1.0, "move: EIO Input/output error", T)
    queue.schedule(A, 2, 2.0, "move: EBUSY Device or resource busy", T + 60)
    assert queue.attempts(A) == 2
    assert queue.errors(A) == [
        "2023-11-14T22:13:20Z move: EIO Input/output error",
        "2023-11-14T22:14:20Z move: EBUSY Device or resource busy",
    ]
    [entry] = queue.head(10)
    assert entry.last_error == "move: EBUSY Device or resource busy"
    assert entry.first_failed == T  # when the trouble began, not the latest failure
    queue.errors(A).clear()  # a copy: what the caller does with it does not reach the queue
    assert len(queue.errors(A)) == 2


def test_the_error_history_of_a_file_that_keeps_failing_stays_bounded(queue):
    for attempt in range(1, MAX_ERRORS_KEPT + 11):
        queue.schedule(A, attempt, 1.0, f"failure {attempt}", T + attempt)
    errors = queue.errors(A)
    assert len(errors) == MAX_ERRORS_KEPT
    assert errors[-1].endswith(f"failure {MAX_ERRORS_KEPT + 10}") and errors[0].endswith("failure 11")


def test_a_forgotten_file_does_not_come_back(queue):
    queue.schedule(A, 1, 1.0, "EIO", T)
    queue.schedule(B, 1, 2.0, "EIO", T)
    queue.forget(A)
    queue.forget("2024-01-09_never-failed.txt")  # harmless
    assert A not in queue and len(queue) == 1 and queue.attempts(A) == 0
    assert queue.pop_due(T + 10, limit=10) == [B]


def test_the_head_lists_the_soonest_first_and_files_in_flight_last_as_copies(queue):
    for rel, delay in ((A, 3.0), (B, 1.0), (C, 2.0)):
        queue.schedule(rel, 1, delay, "EIO", T)
    assert queue.pop_due(T + 1.0, limit=10) == [B]
    head = queue.head(10)
    assert [e.path for e in head] == [C, A, B]
    assert [e.path for e in queue.head(2)] == [C, A]
    head[0].attempts = 99  # the snapshot's copy, not the queue's entry
    assert queue.attempts(C) == 1


def test_the_retry_queue_survives_a_restart(queue):
    queue.schedule(A, 1, 30.0, "EIO", T)
    queue.schedule(A, 2, 60.0, "EBUSY", T + 40)
    queue.schedule(B, 1, 5.0, "EIO", T)
    saved = {e.path: e for e in queue.head(10)}
    again = restarted(queue)
    assert len(again) == 2
    assert {e.path: e for e in again.head(10)} == saved
    assert again.next_due() == T + 5.0
    assert again.pop_due(T + 5.0, limit=10) == [B]
    assert again.pop_due(T + 100.0, limit=10) == [A]


def test_a_file_in_flight_when_the_daemon_stopped_is_tried_again_at_once_after_a_restart(queue):
    queue.schedule(A, 1, 5.0, "EIO", T)
    queue.schedule(B, 1, 3600.0, "EIO", T)
    assert queue.pop_due(T + 5.0, limit=10) == [A]
    again = restarted(queue)
    assert again.attempts(A) == 1 and again.errors(A) == queue.errors(A)
    assert again.pop_due(T, limit=10) == [A]  # no worker holds it any more
    saved = json.loads(queue.path.read_text())["entries"]
    assert {e["path"]: e["next_try"] for e in saved} == {A: 0.0, B: T + 3600}  # as older versions read it


def test_nothing_is_written_until_something_changes(queue):
    queue.save()
    assert not queue.path.exists()  # a daemon with nothing to retry writes no state every second
    queue.schedule(A, 1, 5.0, "EIO", T)
    queue.save()
    assert queue.path.exists()
    queue.path.unlink()
    queue.save()  # unchanged since the last save
    assert not queue.path.exists()
    queue.forget(A)
    queue.save()
    assert json.loads(queue.path.read_text()) == {"version": 1, "entries": []}


def test_a_queue_without_a_state_file_works_in_memory():
    queue = RetryQueue(None)
    queue.schedule(A, 1, 1.0, "EIO", T)
    queue.save()
    assert queue.load() == 0 and queue.pop_due(T + 1, limit=10) == [A]


def test_a_missing_state_file_is_an_empty_queue(queue):
    assert queue.load() == 0 and len(queue) == 0 and not queue.path.exists()


def test_a_file_written_by_the_previous_version_loads(queue):
    # That version wrote a file in flight as next_try 0.0, and every field on every entry.
    queue.path.write_text(
        '{"version": 1, "entries": ['
        '{"path": "2024-01-01_a.txt", "attempts": 2, "next_try": 1700000060.0, "last_error": "EBUSY",'
        ' "errors": ["2023-11-14T22:13:20Z EIO", "2023-11-14T22:14:00Z EBUSY"],'
        ' "first_failed": 1700000000.0},'
        '{"path": "sub/2024-01-02_b.txt", "attempts": 1, "next_try": 0.0, "last_error": "EIO",'
        ' "errors": ["2023-11-14T22:13:20Z EIO"], "first_failed": 1700000000.0}]}'
    )
    assert queue.load() == 2
    assert queue.attempts(A) == 2 and queue.errors(A)[-1] == "2023-11-14T22:14:00Z EBUSY"
    assert queue.pop_due(T, limit=10) == ["sub/2024-01-02_b.txt"]
    assert queue.pop_due(T + 60, limit=10) == [A]


def test_a_hand_written_entry_needs_only_the_four_main_fields(queue):
    entry = {"path": A, "attempts": 1, "next_try": T, "last_error": "EIO"}
    queue.path.write_text(json.dumps({"version": 1, "entries": [entry]}))
    assert queue.load() == 1
    assert queue.errors(A) == [] and queue.head(1) == [RetryEntry(A, 1, T, "EIO", [], 0.0)]


@pytest.mark.parametrize(
    "content",
    [
        "{ not json",
        "",  # a crash between create and write, on some filesystems
        "null",
        "[]",
        '{"version": 1}',
        '{"version": 1, "entries": {"2024-01-01_a.txt": 1}}',
        '{"version": 1, "entries": [{"path": "2024-01-01_a.txt"}]}',
        '{"version": 1, "entries": [{"path": "2024-01-01_a.txt", "attempts": 1, "next_try": 0,'
        ' "last_error": "x", "priority": "high"}]}',
    ],
    ids=[
        "not json",
        "empty",
        "null",
        "a list",
        "no entries",
        "entries not a list",
        "fields missing",
        "unknown field",
    ],
)
def test_an_unreadable_state_file_is_set_aside_and_the_queue_starts_empty(queue, content, caplog):
    queue.path.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert queue.load() == 0
    assert len(queue) == 0
    aside = queue.path.with_suffix(".corrupt")
    assert aside.read_text() == content  # kept for the operator to look at
    assert not queue.path.exists()
    assert "is unreadable" in caplog.text and str(aside) in caplog.text
    queue.schedule(A, 1, 1.0, "EIO", T)
    queue.save()
    assert json.loads(queue.path.read_text())["entries"][0]["path"] == A


BAD_PATHS = [
    "../2024-01-01_outside.txt",
    "/etc/2024-01-01_x",
    "a\u0000b",
    "",
    ".",
    "a//b",
    "a/./b",
    "a/../b",
    7,
]


def test_entries_naming_a_path_outside_the_source_are_dropped_with_a_warning(queue, caplog):
    # A state file is data, not trusted code.
    good = [A, "sub/2024-01-02_b.txt"]
    entries = [{"path": p, "attempts": 1, "next_try": T, "last_error": "x"} for p in BAD_PATHS + good]
    queue.path.write_text(json.dumps({"version": 1, "entries": entries}))
    with caplog.at_level(logging.WARNING):
        assert queue.load() == 2
    assert sorted(queue.pop_due(T, limit=100)) == sorted(good)
    assert caplog.text.count("ignored an entry with a bad path") == len(BAD_PATHS)
    assert queue.path.exists()  # the good entries are still there: the file is not set aside


def test_an_entry_with_no_time_loads_as_due_at_once(queue):
    # What this version writes for a file in flight is 0.0; a null means the same: no time.
    entries = [
        {"path": A, "attempts": 1, "next_try": None, "last_error": "x"},
        {"path": B, "attempts": 1, "next_try": T + 60, "last_error": "x"},
    ]
    queue.path.write_text(json.dumps({"version": 1, "entries": entries}))
    assert queue.load() == 2
    assert queue.pop_due(T, limit=10) == [A]
    assert queue.pop_due(T + 60, limit=10) == [B]


@pytest.mark.xfail(
    strict=True,
    raises=TypeError,
    reason="known bug, not fixed here: an entry whose next_try is not a number is neither dropped nor "
    "set aside; load() raises TypeError (heap comparison), so the daemon cannot start",
)
def test_an_entry_whose_time_is_not_a_number_is_dropped_and_the_others_kept(queue):
    entries = [
        {"path": A, "attempts": 1, "next_try": "soon", "last_error": "x"},
        {"path": B, "attempts": 1, "next_try": T, "last_error": "x"},
    ]
    queue.path.write_text(json.dumps({"version": 1, "entries": entries}))
    queue.load()
    assert queue.pop_due(T, limit=10) == [B]
