"""The settle clock and the skip memory, driven directly: a fake clock (``now`` is an argument)
and constructed stat results, so each test runs in well under a millisecond."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from reorg_tui.engine.readiness import Now, Readiness

SETTLE = 2.0
T = 1_700_000_000.0  # "now" at the start of each test, wall-clock seconds
NAME = "2024-01-01_report.txt"


def at(t: float) -> Now:
    """An instant at which both clocks read ``t``: a wall clock that never steps."""
    return Now(t, t)


def looks(size: int, mtime: float, ino: int = 7, mode: int = stat.S_IFREG | 0o644) -> os.stat_result:
    """What lstat would say about a file. The float and nanosecond times are given explicitly:
    without them a constructed stat_result has ``st_mtime_ns`` None."""
    ns = round(mtime * 1e9)
    whole = int(mtime)
    return os.stat_result((mode, ino, 1, 1, 0, 0, size, whole, whole, whole, mtime, mtime, mtime, ns, ns, ns))


class Source(dict[str, os.stat_result]):
    """The source folder as take_due sees it: a name -> its current lstat."""

    def lstat(self, rel: str) -> os.stat_result:
        try:
            return self[rel]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", rel) from None


@pytest.fixture
def ready() -> Readiness:
    return Readiness(SETTLE)


def test_a_file_already_still_for_the_settle_time_is_ready_when_first_seen(ready):
    assert ready.offer(NAME, looks(10, T - SETTLE), at(T))  # exactly settle seconds old is enough
    assert ready.offer("2024-01-01_older.txt", looks(10, T - 3600), at(T))
    assert len(ready) == 0 and ready.next_due() is None


def test_a_new_file_moves_only_after_it_held_still_for_the_settle_time(ready):
    source = Source({NAME: looks(10, T)})
    assert not ready.offer(NAME, source[NAME], at(T))
    assert len(ready) == 1
    assert ready.next_due() == T + SETTLE
    assert ready.take_due(at(T + SETTLE - 0.01), source.lstat) == []
    assert len(ready) == 1
    assert ready.take_due(at(T + SETTLE), source.lstat) == [(NAME, source[NAME])]
    assert len(ready) == 0 and ready.next_due() is None
    assert ready.take_due(at(T + 10 * SETTLE), source.lstat) == []  # handed out once


def test_the_settle_time_counts_from_the_last_write_not_from_when_the_file_was_seen(ready):
    source = Source({NAME: looks(10, T - 1.5)})  # written 1.5 s before the scan found it
    assert not ready.offer(NAME, source[NAME], at(T))
    assert ready.next_due() == T - 1.5 + SETTLE
    assert ready.take_due(at(T + 0.5), source.lstat) == [(NAME, source[NAME])]


def test_a_file_that_grows_while_settling_starts_over_and_moves_with_its_final_size(ready):
    source = Source({NAME: looks(10, T)})
    ready.offer(NAME, source[NAME], at(T))
    source[NAME] = looks(20, T + 1.5)  # the writer was not done
    assert ready.take_due(at(T + SETTLE), source.lstat) == []
    assert len(ready) == 1
    assert ready.next_due() == T + 1.5 + SETTLE
    assert ready.take_due(at(T + 1.5 + SETTLE - 0.01), source.lstat) == []
    assert ready.take_due(at(T + 1.5 + SETTLE), source.lstat) == [(NAME, looks(20, T + 1.5))]


def test_a_rewrite_of_the_same_length_also_starts_the_clock_over(ready):
    source = Source({NAME: looks(10, T)})
    ready.offer(NAME, source[NAME], at(T))
    source[NAME] = looks(10, T + 1.0)  # same size, new mtime
    assert ready.take_due(at(T + SETTLE), source.lstat) == []
    assert ready.take_due(at(T + 1.0 + SETTLE), source.lstat) == [(NAME, source[NAME])]


def test_a_change_reported_while_settling_counts_from_that_change(ready):
    # A watch event or a rescan offers the file again while it settles.
    source = Source({NAME: looks(10, T)})
    ready.offer(NAME, source[NAME], at(T))
    source[NAME] = looks(30, T + 1.0)
    assert not ready.offer(NAME, source[NAME], at(T + 1.0))
    assert len(ready) == 1
    assert ready.take_due(at(T + SETTLE), source.lstat) == []
    assert ready.take_due(at(T + 1.0 + SETTLE), source.lstat) == [(NAME, source[NAME])]


def test_a_file_stamped_in_the_future_settles_from_now_not_from_its_mtime(ready):
    # A network filesystem whose clock runs an hour ahead of ours.
    source = Source({NAME: looks(10, T + 3600)})
    assert not ready.offer(NAME, source[NAME], at(T))
    assert ready.next_due() == T + SETTLE
    assert ready.take_due(at(T + SETTLE), source.lstat) == [(NAME, source[NAME])]


def test_with_a_clock_ahead_a_reported_write_restarts_the_clock_from_when_it_was_reported(ready):
    # The mtime cannot tell when the write happened, so the time of the report does: the file
    # moves settle seconds after it, not settle seconds after the next look.
    source = Source({NAME: looks(10, T + 3600)})
    ready.offer(NAME, source[NAME], at(T))
    source[NAME] = looks(20, T + 3601)
    ready.offer(NAME, source[NAME], at(T + 1))
    assert ready.take_due(at(T + SETTLE), source.lstat) == []
    assert ready.take_due(at(T + 1 + SETTLE), source.lstat) == [(NAME, source[NAME])]


def test_files_that_vanish_or_stop_being_regular_files_while_settling_are_forgotten(ready):
    source = Source({"2024-01-01_gone.txt": looks(1, T), "2024-01-01_link.txt": looks(1, T)})
    for rel, st in source.items():
        ready.offer(rel, st, at(T))
    del source["2024-01-01_gone.txt"]
    source["2024-01-01_link.txt"] = looks(1, T, mode=stat.S_IFLNK | 0o777)  # replaced by a symlink
    assert ready.take_due(at(T + SETTLE), source.lstat) == []
    assert len(ready) == 0


def test_only_the_files_that_are_due_are_taken_and_the_rest_keep_waiting(ready):
    source = Source({"2024-01-01_a.txt": looks(1, T), "2024-01-01_b.txt": looks(1, T + 1)})
    ready.offer("2024-01-01_a.txt", source["2024-01-01_a.txt"], at(T))
    ready.offer("2024-01-01_b.txt", source["2024-01-01_b.txt"], at(T + 1))
    assert ready.next_due() == T + SETTLE  # the soonest
    assert [rel for rel, _ in ready.take_due(at(T + SETTLE), source.lstat)] == ["2024-01-01_a.txt"]
    assert len(ready) == 1 and ready.next_due() == T + 1 + SETTLE
    assert [rel for rel, _ in ready.take_due(at(T + 1 + SETTLE), source.lstat)] == ["2024-01-01_b.txt"]


def test_a_dropped_file_is_not_handed_out_again(ready):
    # The engine drops a file it claimed another way (a hint found it ready).
    source = Source({NAME: looks(1, T)})
    ready.offer(NAME, source[NAME], at(T))
    ready.drop(NAME)
    assert len(ready) == 0
    assert ready.take_due(at(T + SETTLE), source.lstat) == []


def test_a_file_left_in_place_on_purpose_is_not_tried_again_while_it_is_the_same_file(ready):
    st = looks(10, T - 3600)
    ready.skip(NAME, st, scan=1)
    assert ready.is_skipped(NAME)
    assert not ready.offer(NAME, st, at(T))
    assert len(ready) == 0  # not settling either: nothing to wait for


@pytest.mark.parametrize(
    "other",
    [looks(10, T - 3600, ino=8), looks(11, T - 3600), looks(10, T - 3500)],
    ids=["another inode", "another size", "another mtime"],
)
def test_a_different_file_under_a_skipped_name_is_a_new_candidate(ready, other):
    ready.skip(NAME, looks(10, T - 3600), scan=1)
    assert ready.offer(NAME, other, at(T))
    assert not ready.is_skipped(NAME)


def test_a_full_scan_forgets_skipped_files_it_no_longer_found(ready):
    st = looks(10, T - 3600)
    ready.skip("2024-01-01_gone.txt", st, scan=1)
    ready.skip("2024-01-01_still.txt", st, scan=1)
    ready.skip("2024-01-01_during.txt", st, scan=2)  # skipped while scan 2 ran, maybe after it listed
    ready.forget_skips(before_scan=2, seen={"2024-01-01_still.txt"})
    assert not ready.is_skipped("2024-01-01_gone.txt")
    assert ready.is_skipped("2024-01-01_still.txt")
    assert ready.is_skipped("2024-01-01_during.txt")
    # Put back later, the same file is a candidate again.
    assert ready.offer("2024-01-01_gone.txt", st, at(T))
    assert not ready.offer("2024-01-01_still.txt", st, at(T))


# The wall clock stepped while files settle (an NTP correction, a VM resumed from a snapshot):
# holding still is counted on the monotonic clock, which does not step.
M = 5_000.0  # the monotonic clock's reading at the start (seconds since boot, say)


def test_a_wall_clock_stepped_back_an_hour_while_a_file_settles_does_not_hold_it_an_hour(ready):
    source = Source({NAME: looks(10, T)})
    assert not ready.offer(NAME, source[NAME], Now(T, M))
    back = T - 3600  # the wall clock now reads an hour earlier; the monotonic one went on
    assert ready.take_due(Now(back + SETTLE - 0.01, M + SETTLE - 0.01), source.lstat) == []
    assert ready.take_due(Now(back + SETTLE, M + SETTLE), source.lstat) == [(NAME, source[NAME])]


def test_after_a_step_back_a_file_written_just_before_it_settles_from_when_it_is_seen(ready):
    # Its mtime lies an hour "ahead" of the wall clock now: no age to go by, so it settles from
    # the moment it was first seen, on the monotonic clock.
    source = Source({NAME: looks(10, T)})
    assert not ready.offer(NAME, source[NAME], Now(T - 3600, M))
    assert ready.take_due(Now(T - 3600 + SETTLE - 0.01, M + SETTLE - 0.01), source.lstat) == []
    assert ready.take_due(Now(T - 3600 + SETTLE, M + SETTLE), source.lstat) == [(NAME, source[NAME])]


def test_a_file_written_again_after_a_step_back_settles_from_that_write(ready):
    source = Source({NAME: looks(10, T)})
    ready.offer(NAME, source[NAME], Now(T, M))
    source[NAME] = looks(20, T - 3600 + 1.0)  # written after the step, stamped by the new clock
    assert ready.take_due(Now(T - 3600 + SETTLE, M + SETTLE), source.lstat) == []
    # Written a second before this look (by its mtime): due a settle time after the write.
    assert ready.take_due(Now(T - 3600 + 1.0 + SETTLE, M + 1.0 + SETTLE), source.lstat) == [
        (NAME, source[NAME])
    ]


def test_the_files_settling_longest_are_the_first_seen_whatever_changed_since(ready):
    """The Waiting view's head, asked four times a second: the files first seen earliest, in
    that order. A write to one restarts its settling, not its place; one that leaves and comes
    back is new. Seen by the monotonic clock's order, so a step of the wall clock (the second
    file "seen" an hour earlier by it) does not reorder them."""
    names = [f"2024-01-0{n}_f.txt" for n in range(1, 5)]
    for n, name in enumerate(names):
        wall = T + n if n != 1 else T - 3600  # the wall clock stepped back for the second
        assert not ready.offer(name, looks(10, T + n, ino=n), Now(wall, T + n))
    assert [rel for _, rel, _ in ready.longest(3, at(T + 4))] == names[:3]
    ready.offer(names[0], looks(11, T + 4, ino=0), at(T + 4))  # written again: still first
    ready.drop(names[1])
    ready.offer(names[1], looks(10, T + 5, ino=1), at(T + 5))  # back: last now
    assert [rel for _, rel, _ in ready.longest(10, at(T + 5))] == [names[0], names[2], names[3], names[1]]
    still = {rel: held for _, rel, held in ready.longest(10, at(T + 5))}
    assert still[names[0]] == pytest.approx(1.0) and still[names[3]] == pytest.approx(2.0)
