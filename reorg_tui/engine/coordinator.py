"""The coordinator: the loop on the thread that called ``Engine.run``. Each round it turns the
watcher's hints, files that have settled and retries that have come due into ready work, watches
the disk gate (pausing and resuming intake, and dropping stale folder descriptors after a
remount), and has lanes dispatch batches. It sleeps until woken or until something comes due.

It owns only its loop's locals: every piece of state it touches belongs to a stage and is reached
through that stage's methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from reorg_tui.engine import events as ev
from reorg_tui.engine.bus import EventBus
from reorg_tui.engine.disk import DiskGate
from reorg_tui.engine.failures import Failures
from reorg_tui.engine.feed import Feed
from reorg_tui.engine.intake import Intake
from reorg_tui.engine.lanes import Lanes

SETTLE_ROUND = 0.05  # seconds: settled files are taken in rounds this far apart at most
GATE_EVERY = 0.25  # seconds between looks at the destination's free space while it is open


class Coordinator:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float],
        intake: Intake,
        failures: Failures,
        lanes: Lanes,
        gate: DiskGate,
        bus: EventBus,
        wake: threading.Event,
        halt: threading.Event,
        paused: Callable[[], bool],
        remounted: Callable[[], None],
        pause_reason: Callable[[], str | None],
        feed: Feed,
    ) -> None:
        self.monotonic = monotonic  # its rounds are timed on it: a wall clock step changes nothing
        self.intake = intake
        self.failures = failures
        self.lanes = lanes
        self.gate = gate
        self.bus = bus
        self._wake = wake
        self._halt = halt  # the engine's: a root was replaced, the run ends as if stopped
        self._paused = paused
        self._remounted = remounted  # the destination was mounted afresh: its old descriptors are stale
        self._pause_reason = pause_reason
        self.feed = feed  # a fleet publishes what settled and claims work here, each round

    def run(self, stop: threading.Event, pool: ThreadPoolExecutor, once: bool) -> None:
        last_gate = 0.0
        gate_open = not self.gate.closed
        generation = self.gate.generation
        if not gate_open:
            self.bus.emit(ev.Paused("disk"))
        while not stop.is_set() and not self._halt.is_set():
            now = self.monotonic()
            self.intake.take_hints()
            self.intake.settle_due()
            self.intake.requeue(self.failures.due(self.intake.cap))
            if now - last_gate >= GATE_EVERY or not gate_open:
                last_gate = now
                was_open, gate_open = gate_open, self.gate.check()
                if was_open != gate_open:
                    self.bus.emit(ev.Resumed("disk") if gate_open else ev.Paused("disk"))
                if self.gate.generation != generation:
                    generation = self.gate.generation
                    self._remounted()
            self.feed.round(may_claim=gate_open and not self._paused())
            if gate_open and not self._paused():
                self.lanes.dispatch(pool, stop)
            if once and self.intake.idle_after_scan() and not len(self.failures):
                break
            if once and not gate_open:
                self.failures.left(self._pause_reason() or "destination is short of space")
                break
            self._wake.wait(self._timeout())
            self._wake.clear()

    def _timeout(self) -> float:
        wait = GATE_EVERY
        settle_due = self.intake.due_in()
        if settle_due is not None:
            # Under a stream a file comes due every fraction of a millisecond: waking for each
            # would move them one by one. Files that come due within SETTLE_ROUND are taken
            # together (a file waits at most that much longer than its settle time).
            wait = min(wait, max(SETTLE_ROUND, settle_due))
        due = self.failures.due_in()
        if due is not None:
            wait = min(wait, due)
        return max(0.005, wait)
