"""The backoff schedule and the retry queue, driven directly: times are arguments (a fake clock,
on both the wall and the monotonic clock), and the ledger is a real one under tmp_path (as is the
retry.json of older versions, imported once). A ledger edited by hand is edited here with
sqlite3, as an operator would."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reorg_tui.engine.clocks import Now
from reorg_tui.engine.ledger import open_ledger
from reorg_tui.engine.retry import MAX_ERRORS_KEPT, RetryEntry, RetryQueue, backoff

T = 1_700_000_000.0  # 2023-11-14T22:13:20Z
A, B, C = "2024-01-01_a.txt", "2024-01-02_b.txt", "2024-01-03_c.txt"


def at(t: float) -> Now:
    """An instant at which both clocks read ``t``: a wall clock that never steps."""
    return Now(t, t)


@pytest.fixture
def queue(tmp_path) -> RetryQueue:
    return RetryQueue(open_ledger(tmp_path), legacy=tmp_path / "retry.json")


def restarted(queue: RetryQueue) -> RetryQueue:
    """The queue a new daemon process reads back from the same state folder."""
    queue.save()
    assert queue.legacy is not None
    again = RetryQueue(open_ledger(queue.legacy.parent), legacy=queue.legacy)
    again.load(at(T))  # read back at the time the test started from
    return again


def rows(queue: RetryQueue, table: str = "retries") -> dict[object, tuple[object, ...]]:
    """What the ledger holds, by path, read as an operator would with sqlite3."""
    assert queue.legacy is not None
    with sqlite3.connect(queue.legacy.parent / "ledger.sqlite3") as db:
        found = db.execute(f"SELECT path, attempts, next_try, last_error FROM {table}").fetchall()
    return {path: tuple(rest) for path, *rest in found}


@given(st.integers(min_value=1, max_value=200), st.floats(0.01, 10), st.floats(10, 600), st.floats(0, 1))
def test_backoff_grows_is_capped_and_jittered(attempt, base, cap, roll):
    delay = backoff(attempt, base, cap, rng=lambda: roll)
    full = min(cap, base * 2 ** (attempt - 1))
    assert 0.5 * full <= delay <= full + 1e-9
    assert backoff(attempt + 1, base, cap, rng=lambda: 1.0) >= backoff(attempt, base, cap, rng=lambda: 1.0)


def test_a_failed_file_comes_back_only_once_its_delay_is_over(queue):
    queue.schedule(A, 1, 5.0, "move: EIO Input/output error", at(T))
    assert queue.next_due() == T + 5.0
    assert queue.pop_due(at(T + 4.99), limit=10) == []
    assert queue.pop_due(at(T + 5.0), limit=10) == [A]
    # Handed to a worker, it is still known (a scan must not offer it again) until forgotten.
    assert A in queue and len(queue) == 1 and queue.attempts(A) == 1


def test_a_file_handed_out_is_not_handed_out_again_until_it_fails_again(queue):
    queue.schedule(A, 1, 5.0, "EIO", at(T))
    assert queue.pop_due(at(T + 5.0), limit=10) == [A]
    assert queue.pop_due(at(T + 3600), limit=10) == []
    assert queue.next_due() is None  # nothing to wake up for while it is in flight
    assert queue.head(1)[0].next_try is None  # in flight: no time
    queue.schedule(A, 2, 10.0, "EIO", at(T + 6))
    assert queue.next_due() == T + 16
    assert queue.pop_due(at(T + 16), limit=10) == [A]


def test_files_come_back_soonest_first_and_at_most_limit_at_a_time(queue):
    for rel, delay in ((A, 3.0), (B, 1.0), (C, 2.0)):
        queue.schedule(rel, 1, delay, "EIO", at(T))
    assert queue.pop_due(at(T + 10), limit=2) == [B, C]
    assert queue.next_due() == T + 3.0
    assert queue.pop_due(at(T + 10), limit=2) == [A]


def test_the_latest_schedule_of_a_file_wins(queue):
    queue.schedule(A, 1, 1.0, "EIO", at(T))
    queue.schedule(A, 1, 10.0, "ENOSPC", at(T))  # no room: a longer wait before the first one came
    assert queue.pop_due(at(T + 1.0), limit=10) == []
    assert queue.pop_due(at(T + 10.0), limit=10) == [A]
    assert len(queue) == 1
    queue.schedule(B, 1, 1.0, "EIO", at(T))
    queue.schedule(B, 1, 10.0, "ENOSPC", at(T))
    assert queue.next_due() == T + 10.0  # the engine does not wake up for the earlier time


def test_each_failure_is_kept_with_its_utc_time_the_newest_last(queue):
    assert queue.attempts(A) == 0 and queue.errors(A) == []
    queue.schedule(A, 1, 1.0, "move: EIO Input/output error", at(T))
    queue.schedule(A, 2, 2.0, "move: EBUSY Device or resource busy", at(T + 60))
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
        queue.schedule(A, attempt, 1.0, f"failure {attempt}", at(T + attempt))
    errors = queue.errors(A)
    assert len(errors) == MAX_ERRORS_KEPT
    assert errors[-1].endswith(f"failure {MAX_ERRORS_KEPT + 10}") and errors[0].endswith("failure 11")


def test_a_forgotten_file_does_not_come_back(queue):
    queue.schedule(A, 1, 1.0, "EIO", at(T))
    queue.schedule(B, 1, 2.0, "EIO", at(T))
    queue.forget(A)
    queue.forget("2024-01-09_never-failed.txt")  # harmless
    assert A not in queue and len(queue) == 1 and queue.attempts(A) == 0
    assert queue.pop_due(at(T + 10), limit=10) == [B]


def test_the_head_lists_the_soonest_first_and_files_in_flight_last_as_copies(queue):
    for rel, delay in ((A, 3.0), (B, 1.0), (C, 2.0)):
        queue.schedule(rel, 1, delay, "EIO", at(T))
    assert queue.pop_due(at(T + 1.0), limit=10) == [B]
    head = queue.head(10)
    assert [e.path for e in head] == [C, A, B]
    assert [e.path for e in queue.head(2)] == [C, A]
    head[0].attempts = 99  # the snapshot's copy, not the queue's entry
    assert queue.attempts(C) == 1


def test_the_retry_queue_survives_a_restart(queue):
    queue.schedule(A, 1, 30.0, "EIO", at(T))
    queue.schedule(A, 2, 60.0, "EBUSY", at(T + 40))
    queue.schedule(B, 1, 5.0, "EIO", at(T))
    saved = {e.path: e for e in queue.head(10)}
    again = restarted(queue)
    assert len(again) == 2
    assert {e.path: e for e in again.head(10)} == saved
    assert again.next_due() == T + 5.0
    assert again.pop_due(at(T + 5.0), limit=10) == [B]
    assert again.pop_due(at(T + 100.0), limit=10) == [A]


def test_a_file_in_flight_when_the_daemon_stopped_is_tried_again_at_once_after_a_restart(queue):
    queue.schedule(A, 1, 5.0, "EIO", at(T))
    queue.schedule(B, 1, 3600.0, "EIO", at(T))
    assert queue.pop_due(at(T + 5.0), limit=10) == [A]
    again = restarted(queue)
    assert again.attempts(A) == 1 and again.errors(A) == queue.errors(A)
    assert again.pop_due(at(T), limit=10) == [A]  # no worker holds it any more
    saved = {path: next_try for path, (_, next_try, _) in rows(queue).items()}
    assert saved == {A.encode(): None, B.encode(): T + 3600}  # no time: due at once


def test_nothing_is_written_until_something_changes_and_then_only_what_changed(queue, monkeypatch):
    saves: list[tuple[list[str], list[str]]] = []
    ledger = queue.ledger
    real = ledger.save_retries
    monkeypatch.setattr(
        ledger,
        "save_retries",
        lambda changed, removed: (saves.append(([e.path for e in changed], removed)), real(changed, removed)),
    )
    queue.save()
    assert saves == []  # a daemon with nothing to retry writes nothing every second
    queue.schedule(A, 1, 5.0, "EIO", at(T))
    queue.schedule(B, 1, 5.0, "EIO", at(T))
    queue.save()
    queue.save()  # unchanged since the last save
    assert [(sorted(changed), removed) for changed, removed in saves] == [([A, B], [])]
    queue.schedule(B, 2, 5.0, "EIO", at(T + 10))
    queue.forget(A)
    queue.save()
    assert saves[-1] == ([B], [A])  # one transaction, with only what changed
    assert rows(queue) == {B.encode(): (2, T + 15, b"EIO")}


def test_a_queue_without_a_ledger_works_in_memory():
    queue = RetryQueue(None)
    queue.schedule(A, 1, 1.0, "EIO", at(T))
    queue.save()
    assert queue.load() == 0 and queue.pop_due(at(T + 1), limit=10) == [A]


def test_an_empty_ledger_is_an_empty_queue(queue):
    assert queue.load() == 0 and len(queue) == 0 and rows(queue) == {}


def test_the_retry_json_of_a_version_before_the_ledger_is_imported_once(queue, caplog):
    # That version wrote a file in flight as next_try 0.0, and every field on every entry.
    queue.legacy.write_text(
        '{"version": 1, "entries": ['
        '{"path": "2024-01-01_a.txt", "attempts": 2, "next_try": 1700000060.0, "last_error": "EBUSY",'
        ' "errors": ["2023-11-14T22:13:20Z EIO", "2023-11-14T22:14:00Z EBUSY"],'
        ' "first_failed": 1700000000.0},'
        '{"path": "sub/2024-01-02_b.txt", "attempts": 1, "next_try": 0.0, "last_error": "EIO",'
        ' "errors": ["2023-11-14T22:13:20Z EIO"], "first_failed": 1700000000.0}]}'
    )
    text = queue.legacy.read_text()
    with caplog.at_level(logging.INFO):
        assert queue.load(at(T)) == 2
    assert queue.attempts(A) == 2 and queue.errors(A)[-1] == "2023-11-14T22:14:00Z EBUSY"
    assert queue.pop_due(at(T), limit=10) == ["sub/2024-01-02_b.txt"]
    assert queue.pop_due(at(T + 60), limit=10) == [A]
    # Into the ledger, and the file renamed aside (kept, never read again)
    assert not queue.legacy.exists() and "imported 2 file(s)" in caplog.text
    assert queue.legacy.with_name("retry.json.imported").read_text() == text
    assert set(rows(queue)) == {A.encode(), b"sub/2024-01-02_b.txt"}
    again = restarted(queue)
    assert len(again) == 2 and again.errors(A) == queue.errors(A)


def test_a_hand_written_entry_needs_only_the_four_main_fields(queue):
    entry = {"path": A, "attempts": 1, "next_try": T, "last_error": "EIO"}
    queue.legacy.write_text(json.dumps({"version": 1, "entries": [entry]}))
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
    queue.legacy.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert queue.load() == 0
    assert len(queue) == 0
    aside = queue.legacy.with_suffix(".corrupt")
    assert aside.read_text() == content  # kept for the operator to look at
    assert not queue.legacy.exists()
    assert "is unreadable" in caplog.text and str(aside) in caplog.text
    queue.schedule(A, 1, 1.0, "EIO", at(T))
    assert [e.path for e in restarted(queue).head(10)] == [A]


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
    queue.legacy.write_text(json.dumps({"version": 1, "entries": entries}))
    with caplog.at_level(logging.WARNING):
        assert queue.load() == 2
    assert sorted(queue.pop_due(at(T), limit=100)) == sorted(good)
    assert caplog.text.count("ignored an entry with a bad path") == len(BAD_PATHS)
    assert set(rows(queue)) == {p.encode() for p in good}  # the good entries are imported


def test_an_entry_with_no_time_loads_as_due_at_once(queue):
    # What this version writes for a file in flight is 0.0; a null means the same: no time.
    entries = [
        {"path": A, "attempts": 1, "next_try": None, "last_error": "x"},
        {"path": B, "attempts": 1, "next_try": T + 60, "last_error": "x"},
    ]
    queue.legacy.write_text(json.dumps({"version": 1, "entries": entries}))
    assert queue.load(at(T)) == 2
    assert queue.pop_due(at(T), limit=10) == [A]
    assert queue.pop_due(at(T + 60), limit=10) == [B]


def test_an_entry_whose_time_is_not_a_number_is_dropped_and_the_others_kept(queue, caplog):
    entries = [
        {"path": A, "attempts": 1, "next_try": "soon", "last_error": "x"},
        {"path": B, "attempts": 1, "next_try": T, "last_error": "x"},
        {"path": C, "attempts": "1", "next_try": T, "last_error": "x"},
    ]
    queue.legacy.write_text(json.dumps({"version": 1, "entries": entries}))
    with caplog.at_level(logging.WARNING):
        assert queue.load() == 1
    assert queue.pop_due(at(T), limit=10) == [B]
    assert "bad next_try 'soon'" in caplog.text and "bad attempts '1'" in caplog.text


def test_a_hand_edited_ledger_row_of_the_wrong_type_is_set_aside_with_a_warning(queue, caplog):
    queue.schedule(A, 1, 5.0, "EIO", at(T))
    queue.save()
    assert queue.legacy is not None
    with sqlite3.connect(queue.legacy.parent / "ledger.sqlite3") as db:
        for values in (
            (B.encode(), 1, "soon", b"x", "[]", T),  # a time that is not a number
            (C.encode(), "two", T, b"x", "[]", T),  # attempts that are not a number
            (7, 1, T, b"x", "[]", T),  # a path that is not a path
            (b"../2024-01-01_outside.txt", 1, T, b"x", "[]", T),  # a path out of the source
            (b"2024-01-04_d.txt", 1, T, b"x", "not json", T),  # an unreadable history: just lost
        ):
            db.execute("INSERT INTO retries VALUES (?, ?, ?, ?, ?, ?)", values)
    with caplog.at_level(logging.WARNING):
        again = restarted(queue)
    assert sorted(e.path for e in again.head(10)) == [A, "2024-01-04_d.txt"]  # never a crash
    assert again.errors("2024-01-04_d.txt") == []
    assert caplog.text.count("is not what this version writes; set aside") == 3
    assert "next_try='soon'" in caplog.text and "attempts='two'" in caplog.text and "path=7" in caplog.text
    assert caplog.text.count("ignored an entry with a bad path") == 1
    # Kept for the operator, out of the queue; the bad path is gone: the next start is quiet
    assert set(rows(queue, "retries_aside")) == {B.encode(), C.encode(), 7}
    assert set(rows(queue)) == {A.encode(), b"2024-01-04_d.txt"}
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(restarted(again)) == 2
    assert caplog.text == ""


# The wall clock stepped back (an NTP correction, a VM resumed): a retry's wait is counted on the
# monotonic clock, so it is not an hour late; its wall-clock next_try is still what faces show.
M = 5_000.0  # the monotonic clock's reading at the start


def test_a_wall_clock_stepped_back_an_hour_does_not_hold_a_retry_for_an_hour(queue):
    queue.schedule(A, 1, 5.0, "EIO", Now(T, M))
    assert queue.head(1)[0].next_try == T + 5.0
    back = T - 3600
    assert queue.pop_due(Now(back + 4.99, M + 4.99), limit=10) == []
    assert queue.pop_due(Now(back + 5.0, M + 5.0), limit=10) == [A]


def test_a_saved_retry_is_due_as_long_after_a_restart_as_it_had_left_to_wait(queue):
    queue.schedule(A, 1, 30.0, "EIO", Now(T, M))
    queue.save()
    again = RetryQueue(open_ledger(queue.legacy.parent), legacy=queue.legacy)
    again.load(Now(T + 10, 42.0))  # a new process, 10 s later: a monotonic clock of its own
    assert again.pop_due(Now(T + 29.99, 42.0 + 19.99), limit=10) == []
    assert again.pop_due(Now(T + 30, 42.0 + 20), limit=10) == [A]
