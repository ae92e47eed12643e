"""Lanes: how many batches run at once, and on which thread, driven directly (no engine threads).

Intake and the mover are stood in for by the two things lanes read of them: a ready queue and the
mover's measured fsync time. What is asserted is where each batch ran and how many ran at once."""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from reorg_tui.engine.lanes import INLINE_WAIT, SLOW_FSYNC, Lanes


@dataclass
class Queue:
    """The part of Intake that lanes use."""

    ready: deque = field(default_factory=deque)
    scanning: bool = False
    notified: int = 0

    def ready_count(self) -> int:
        return len(self.ready)

    def take(self, size: int) -> list:
        return [self.ready.popleft() for _ in range(min(size, len(self.ready)))]

    def notify_space(self) -> None:
        self.notified += 1


@dataclass
class Disk:
    fsync_seconds: float = 0.0


def make(queue: Queue, *, copies: bool = False, fsync: float = 0.0, workers: int = 4, work=None, open_=True):
    ran: list[tuple[str, int]] = []
    stopping = threading.Event()

    def record(batch: list) -> None:
        ran.append((threading.current_thread().name, len(batch)))

    lanes = Lanes(
        workers=workers,
        batch_size=10,
        intake=queue,  # type: ignore[arg-type]
        mover=Disk(fsync),  # type: ignore[arg-type]
        work=work or record,
        may_move=lambda: open_,
        wake=threading.Event(),
        stopping=stopping,
        copies=copies,
    )
    return lanes, ran, stopping


def files(n: int) -> deque:
    return deque((f"2024-01-01_{i}", None) for i in range(n))


@pytest.mark.parametrize(
    ("copies", "fsync", "expected"),
    [
        (False, 0.0, 1),  # renames on one filesystem: the kernel serializes them per folder anyway
        (True, 0.0, 4),  # copies not yet measured: every worker
        (True, SLOW_FSYNC * 10, 4),  # copies to a disk that makes them wait: every worker
        (True, SLOW_FSYNC / 10, 1),  # copies to a tmpfs or a write cache: threads would only contend
    ],
)
def test_how_many_batches_run_at_once(copies, fsync, expected):
    lanes, _, _ = make(Queue(), copies=copies, fsync=fsync)
    assert lanes.count() == expected


def test_renames_run_on_the_coordinator_itself_in_batches_until_the_queue_is_empty():
    queue = Queue(files(25))
    lanes, ran, _ = make(queue)
    with ThreadPoolExecutor(2, thread_name_prefix="pool") as pool:
        lanes.dispatch(pool, threading.Event())
    me = threading.current_thread().name
    assert ran == [(me, 10), (me, 10), (me, 5)]
    assert lanes.running() == 0 and not queue.ready
    assert queue.notified == 3  # each batch's end lets a scanner waiting for room go on


def test_copies_go_to_the_pool_no_more_at_once_than_the_lanes():
    queue = Queue(files(100))
    gate = threading.Event()
    at_once: list[int] = []

    def slow(batch: list) -> None:
        at_once.append(lanes.running())
        gate.wait(5)

    lanes, _, _ = make(queue, copies=True, fsync=SLOW_FSYNC * 10, workers=2, work=slow)
    with ThreadPoolExecutor(4, thread_name_prefix="pool") as pool:
        lanes.dispatch(pool, threading.Event())
        assert lanes.running() == 2  # two lanes, two batches: the rest wait in the queue
        # A share of what is ready, split across the workers, at most a batch each.
        assert len(queue.ready) == 100 - 2 * 10
        gate.set()
    assert max(at_once) <= 2


def test_the_scanner_gets_the_lane_only_when_it_is_free_and_moves_may_run():
    queue = Queue(files(5))
    lanes, _, stopping = make(queue)
    assert lanes.claim_inline()
    assert not lanes.claim_inline()  # one lane, taken
    lanes.run_inline([])  # ends the batch it claimed
    assert lanes.running() == 0
    assert lanes.claim_inline()
    lanes.run_inline([])
    stopping.set()
    assert not lanes.claim_inline()  # a stop under way: nothing new starts

    paused, _, _ = make(Queue(), open_=False)
    assert not paused.claim_inline()  # paused by an operator or by the disk gate
    copies, _, _ = make(Queue(), copies=True)
    assert not copies.claim_inline()  # several lanes: the pool moves them


def test_while_the_scanner_moves_what_it_lists_the_coordinator_leaves_the_ready_files_to_it():
    queue = Queue(files(5), scanning=True)
    lanes, ran, _ = make(queue)
    lanes.scan_started()
    with ThreadPoolExecutor(1) as pool:
        lanes.dispatch(pool, threading.Event())
        assert ran == [] and len(queue.ready) == 5  # within INLINE_WAIT of the scanner's last batch
        lanes._inlined_at -= INLINE_WAIT  # the scanner has found nothing to move for that long
        lanes.dispatch(pool, threading.Event())
    assert ran == [(threading.current_thread().name, 5)]


def test_a_batch_that_fails_unexpectedly_is_logged_and_frees_its_lane(caplog):
    def broken(batch: list) -> None:
        raise RuntimeError("a bug")

    queue = Queue(files(3))
    lanes, _, _ = make(queue, work=broken)
    with ThreadPoolExecutor(1) as pool:
        lanes.dispatch(pool, threading.Event())
    assert lanes.running() == 0 and lanes.busy == 0
    assert "a worker failed unexpectedly" in caplog.text
