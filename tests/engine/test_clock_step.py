"""The wall clock stepped back an hour while files settle, in the real engine: its wall clock is
a seam (``Engine(clock=...)``, the one every stage reads the time of day from), stepped here by
the test; the monotonic clock is the real one. A file still settles on time."""

from __future__ import annotations

import threading
import time

from reorg_tui.engine import events as ev
from tests.conftest import OLD, make_settings, running, unmark, wait_for, write

HOUR = 3600.0


class SteppedClock:
    """time.time, until ``step`` sets it back (or forward) by some seconds, as NTP or a VM
    resumed from a snapshot would."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.time() + self.offset

    def step(self, seconds: float) -> None:
        with self._lock:
            self.offset += seconds


def test_a_wall_clock_stepped_back_an_hour_while_a_file_settles_does_not_hold_it(tmp_path):
    settle = 1.0
    settings = make_settings(tmp_path, settle=settle)
    clock = SteppedClock()
    with running(settings, clock=clock) as (engine, rec):
        src = write(settings.source / "2024-05-07_report.txt", b"written just now")
        wait_for(lambda: engine.snapshot().queues.settling == 1, what="the file to settle")
        seen = time.monotonic()
        clock.step(-HOUR)
        wait_for(lambda: rec.of(ev.Moved), timeout=settle + 10, what="the move after the step")
        waited = time.monotonic() - seen
    assert not src.exists()
    assert (settings.dest / "2024/05/07/2024-05-07_report.txt").read_bytes() == b"written just now"
    assert waited < settle + 5  # on time, with a generous margin: not an hour late
    print(f"settled {waited:.2f} s after the step (settle {settle} s)")


def test_a_file_written_just_before_a_step_back_settles_once_it_holds_still(tmp_path):
    # Its mtime lies an hour ahead of the engine's clock after the step: it has no age to go by,
    # and settles a settle time after the engine first saw it, not an hour later.
    settle = 1.0
    settings = make_settings(tmp_path, settle=settle)
    clock = SteppedClock()
    clock.step(-HOUR)
    with running(settings, clock=clock) as (engine, rec):
        write(settings.source / "2024-05-08_report.txt", b"stamped by the old clock")
        started = time.monotonic()
        wait_for(lambda: rec.of(ev.Moved), timeout=settle + 10, what="the move")
        waited = time.monotonic() - started
    assert waited < settle + 5


def test_a_wall_clock_stepped_back_an_hour_does_not_hold_a_retry_for_an_hour(tmp_path, immutable):
    # chattr +i on the destination: EPERM even for root, a transient error retried with backoff.
    settings = make_settings(tmp_path, retry_base_delay=0.5, retry_max_delay=1.0, max_retries=50)
    immutable(settings.dest)
    write(settings.source / "2024-05-09_report.txt", b"retried", OLD)
    clock = SteppedClock()
    with running(settings, clock=clock) as (engine, rec):
        wait_for(lambda: rec.of(ev.Retried), what="the first retry")
        clock.step(-HOUR)
        unmark(settings.dest)
        cleared = time.monotonic()
        wait_for(lambda: rec.of(ev.Moved), timeout=15, what="the move once the fault cleared")
        waited = time.monotonic() - cleared
    assert (settings.dest / "2024/05/09/2024-05-09_report.txt").read_bytes() == b"retried"
    assert waited < settings.retry_max_delay + 5  # a retry's wait at most, not an hour
