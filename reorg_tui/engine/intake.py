"""Intake: finding files and deciding they are ready. The scan loop, the watcher's hints, the
settle clock, and the ready queue that batches are taken from.

Owns, under its own lock (``_space``, a Condition on it, is where a scanner waits for room):
``_ready`` (files ready to move, in order), ``_claimed`` (every file ready or in flight: one path
is in at most one place at a time), ``readiness`` (settling files and the skip memory), and the
scan count. ``scanning``, ``scan_seconds`` and ``last_scan_at`` are written by the scanner alone
and read anywhere.

Threads: the scanner runs ``scan_loop``; the coordinator calls ``take_hints``, ``settle_due`` and
``requeue``; batch threads call ``skip`` and ``done``; lanes call ``take``. Where moves run one
lane at a time, the scanner also moves what it lists, batch by batch (``_inline_take``), asking
lanes for the lane under this lock (the lock order is intake, then lanes; never the reverse).
"""

from __future__ import annotations

import itertools
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from reorg_tui.engine import steps
from reorg_tui.engine.clocks import Now, now_of
from reorg_tui.engine.kinds import Ready
from reorg_tui.engine.lock import flocks_of_others
from reorg_tui.engine.metrics import Metrics, Pending
from reorg_tui.engine.naming import Naming
from reorg_tui.engine.readiness import Readiness
from reorg_tui.engine.settings import EngineSettings
from reorg_tui.engine.watch import ScanCount, Watcher, scan

if TYPE_CHECKING:
    from reorg_tui.engine.failures import Failures
    from reorg_tui.engine.feed import Feed
    from reorg_tui.engine.lanes import Lanes

FULL_SCAN_EVERY = 20  # polls: a full listing at least this often, even of an unchanged folder


class Intake:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        naming: Naming,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        watcher: Watcher,
        metrics: Metrics,
        failures: Failures,
        wake: threading.Event,
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.source = str(settings.source)
        self.naming = naming
        self.clock = clock  # the wall clock: a file's mtime is compared with it
        self.monotonic = monotonic  # how long a file has held still is counted on this one
        self.watcher = watcher
        self.metrics = metrics
        self.failures = failures
        self.lanes: Lanes  # set by the engine once both exist: each asks the other
        self.roots_ok: Callable[[], bool] = lambda: True  # the engine's: is every root the same folder?
        self.feed: Feed  # set by the engine: whether this instance lists, where settled files go
        self.listing = True  # written by the scanner (a fleet lists on one instance at a time)
        self._wake = wake  # the coordinator's: there is work to hand out
        self._stopping = stopping
        self.scan_now = threading.Event()

        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._ready: deque[Ready] = deque()
        self._ready_at: deque[float] = deque()  # when each of _ready became ready (wall clock)
        self._claimed: set[str] = set()
        self.cap = max(1024, settings.workers * settings.batch_size * 2)
        self.readiness = Readiness(settings.settle)
        self.scans = 0
        self.scanning = False
        self.scan_seconds = 0.0
        self.last_scan_at: float | None = None  # when the latest listing ended, not cut short by a stop
        # Folders below the source that another instance holds (its source: lock.py), as the
        # latest scan found them: left to it, their hints dropped. The scanner writes it whole.
        self.held_below: dict[str, int] = {}

    # ---- what others ask ---------------------------------------------------------------------

    def ready_count(self) -> int:
        return len(self._ready)  # a length, read without the lock: a hint, checked again in take()

    def counts(self) -> tuple[int, int, int]:
        """(settling, ready, in flight)."""
        with self._lock:
            return len(self.readiness), len(self._ready), len(self._claimed) - len(self._ready)

    def set_settle(self, seconds: float) -> None:
        """A new settle time (a reload): files settling now are due by it from their next look."""
        with self._lock:
            self.readiness.settle = seconds

    def waiting(self, count: int) -> list[Pending]:
        """The ``count`` files settling longest, and the first ``count`` ready (the queue is in
        the order they became ready)."""
        now = self.now()
        with self._lock:
            settling = self.readiness.longest(count, now)
            heads = itertools.islice(self._ready, count), itertools.islice(self._ready_at, count)
            ready = [Pending(rel, "ready", at) for (rel, _), at in zip(*heads, strict=True)]
        return [
            Pending(rel, "settling", seen, f"still for {still:.0f}s") for seen, rel, still in settling
        ] + ready

    def due_in(self) -> float | None:
        """Seconds until the next settling file comes due, if any (counted on the monotonic
        clock: a step of the wall clock changes nothing here)."""
        with self._lock:
            due = self.readiness.next_due()
        return None if due is None else due - self.monotonic()

    def now(self) -> Now:
        return now_of(self.clock, self.monotonic)

    def idle_after_scan(self) -> bool:
        """A full scan has finished, and nothing it found is settling, ready or in flight."""
        with self._lock:
            return not self.scanning and self.scans > 0 and not self._claimed and not len(self.readiness)

    def take(self, size: int) -> list[Ready]:
        """Up to ``size`` ready files, claimed for a batch; a scanner waiting for room goes on."""
        with self._lock:
            batch = self._pop(size)
            self._space.notify_all()
        return batch

    def accept(self, files: list[Ready]) -> None:
        """Files a fleet's claim gave this instance: ready to move here."""
        with self._lock:
            at = self.clock()
            for rel, st in files:
                self._claimed.add(rel)
                self._ready.append((rel, st))
                self._ready_at.append(at)
        self._wake.set()

    def requeue(self, rels: list[str]) -> None:
        """Files whose retry has come: ready again, to be looked at afresh."""
        if not rels:
            return
        with self._lock:
            at = self.clock()
            for rel in rels:
                self._claimed.add(rel)
                self._ready.append((rel, None))
                self._ready_at.append(at)

    def done(self, batch: list[Ready], changed: list[str]) -> None:
        """A batch is over: its files are no longer claimed; one written to during its copy
        settles again."""
        with self._lock:
            self._claimed.difference_update(rel for rel, _ in batch)
            for rel in changed:
                try:
                    st = self._lstat_source(rel)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    self._offer(rel, st, self.now())

    def skip(self, rel: str, st: os.stat_result) -> None:
        """Left in the source by the skip policy: not tried again while it is the same file."""
        with self._lock:
            self.readiness.skip(rel, st, self.scans)

    def notify_space(self) -> None:
        with self._lock:
            self._space.notify_all()

    def clear(self) -> None:
        """At shutdown: what was ready stays in the source for the next run."""
        with self._lock:
            self._claimed.clear()
            self._ready.clear()
            self._ready_at.clear()
            self._space.notify_all()

    # ---- the coordinator's rounds ------------------------------------------------------------

    def take_hints(self) -> None:
        seen = []
        held = self.held_below
        hints = self.watcher.take_hints()
        if not self.listing:
            return  # the fleet's lister looks at them
        for rel in hints:
            if self.naming.not_taken(rel, self.settings.recursive) is not None:
                continue  # as the scan would not take it (an ignored folder's file included)
            if held and _below_any(rel, held):
                continue
            try:
                st = self._lstat_source(rel)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                seen.append((rel, st))
        if seen:
            now = self.now()
            with self._lock:  # once for all the hints gathered since the last round
                for rel, st in seen:
                    self._offer(rel, st, now)

    def settle_due(self) -> None:
        with self._lock:
            for rel, st in self.readiness.take_due(self.now(), self._lstat_source):
                self._make_ready(rel, st)

    # ---- the scanner ---------------------------------------------------------------------------

    def scan_loop(self, once: bool) -> None:
        while not self._stopping.is_set() and self.roots_ok():
            self.listing = self.feed.lists()
            if not self.listing:  # another instance of the fleet lists: try again next poll
                self.scan_now.wait(self.settings.poll_interval)
                self.scan_now.clear()
                continue
            steps.reached("scanning")
            self.scan_now.clear()
            started = time.monotonic()
            listed = _mtime_ns(self.source), time.time_ns()  # before the listing: a change during it shows
            count = ScanCount()
            with self._lock:
                self.scanning = True
                generation = self.scans
                self.lanes.scan_started()
            seen: set[str] = set()
            others = flocks_of_others() if self.settings.recursive else {}
            for rel, st in scan(self.source, self.naming, self.settings.recursive, count, others):
                if self._stopping.is_set():
                    break
                with self._lock:  # (self._space is this lock too; waited on below)
                    if self.readiness.is_skipped(rel):
                        seen.add(rel)
                    self._offer(rel, st, self.now())
                    inline = self._inline_take()
                    while inline is None and len(self._ready) >= self.cap and not self._stopping.is_set():
                        self._space.wait(0.5)
                        inline = self._inline_take()
                if inline:
                    self.lanes.run_inline(inline)
                elif len(self._ready) and not count.taken % 64:
                    self._wake.set()
            self._leave_held(count.held)
            with self._lock:
                self.readiness.forget_skips(generation, seen)
                self.scanning = False
                self.scans += 1
            self.scan_seconds = time.monotonic() - started
            if not self._stopping.is_set():
                self.last_scan_at = self.clock()
            self.metrics.set_ignored(count.ignored)
            if not self._stopping.is_set():
                self.watcher.check_coverage(count.folders)
            self.failures.count_quarantine()
            self._wake.set()
            if once:
                return
            self._wait_for_a_change(*listed)

    def _leave_held(self, held: dict[str, int]) -> None:
        """Say once of each folder below that another instance holds that it is left to it."""
        for rel, pid in held.items():
            if self.held_below.get(rel) != pid:
                path = f"{self.source}/{rel}"
                self.watcher.on_warning(f"{path} is held by another instance (pid {pid}): left to it")
        self.held_below = held

    def _inline_take(self) -> list[Ready] | None:
        """A batch for the scanner to move itself: a full one, or what is ready once lanes say the
        scanner has waited long enough since its last. Lock held."""
        size = self.settings.batch_size
        if len(self._ready) < size and (not self._ready or not self.lanes.inline_due()):
            return None  # the usual answer, for all but one file a batch: asked first
        if not self.lanes.claim_inline():
            return None
        return self._pop(size)

    def _wait_for_a_change(self, mtime_ns: int | None, listed_ns: int) -> None:
        """Between full scans: every poll interval, rescan only if the source folder changed.

        A folder's mtime moves whenever a name is added, removed or renamed in it, so an
        unchanged mtime means an unchanged listing, and a quiet folder of a million names costs
        one stat per poll instead of a listing. Trusted only when the mtime is more than a second
        older than the last listing (timestamps are coarse: a change in the same tick would look
        the same), only without --recursive (subfolders have mtimes of their own), and never for
        more than FULL_SCAN_EVERY polls in a row. A scan asked for (an event overflow, a new
        folder, a restarted watcher) runs at once.
        """
        for _ in range(FULL_SCAN_EVERY):
            if self.scan_now.wait(self.settings.poll_interval) or self._stopping.is_set():
                return
            self.failures.count_quarantine()
            if not self.roots_ok():
                return
            if self.settings.recursive or mtime_ns is None or listed_ns - mtime_ns < 1_000_000_000:
                return
            if _mtime_ns(self.source) != mtime_ns:
                return

    # ---- lock held -----------------------------------------------------------------------------

    def _offer(self, rel: str, st: os.stat_result, now: Now) -> None:
        """A regular file the naming wants was seen; queued if it is ready."""
        if rel in self._claimed or rel in self.failures.waiting:
            return
        if self.readiness.offer(rel, st, now):
            self._make_ready(rel, st)

    def _make_ready(self, rel: str, st: os.stat_result) -> None:
        self.readiness.drop(rel)
        if not self.feed.offer(rel, st):
            return  # a fleet's: published to its queue, and claimed from there
        self._claimed.add(rel)
        self._ready.append((rel, st))
        self._ready_at.append(self.clock())

    def _pop(self, size: int) -> list[Ready]:
        count = min(size, len(self._ready))
        for _ in range(count):
            self._ready_at.popleft()
        return [self._ready.popleft() for _ in range(count)]

    def _lstat_source(self, rel: str) -> os.stat_result:
        return os.lstat(f"{self.source}/{rel}")  # metadata only: a move opens no-follow


def _below_any(rel: str, folders: dict[str, int]) -> bool:
    parts = rel.split("/")[:-1]
    return any("/".join(parts[: i + 1]) in folders for i in range(len(parts)))


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
