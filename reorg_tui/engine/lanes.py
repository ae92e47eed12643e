"""Lanes: how many batches run at once, and on which thread each runs.

Measured on this project's machines (see the README's figures):
- Renames within one filesystem are metadata operations the kernel serializes per folder: several
  threads doing them only contend (for the folder lock and the interpreter lock), so they run one
  batch at a time. Handing a batch to another thread costs a switch of the interpreter lock per
  system call while the two run side by side, so a rename batch runs on the thread that found it
  ready: the scanner while it lists (``claim_inline``), otherwise the coordinator (``dispatch``).
- Copies go to the pool, where a stop can abandon one mid-file, on every worker where the disk
  makes them wait (an fsync slower than SLOW_FSYNC is real I/O worth overlapping) and on one lane
  where it does not (a tmpfs, a write cache): there, threads would only contend.

Owns, under its own lock: ``_batches`` (running now), ``_inlined_at`` (when the scanner last took
a batch, or began its scan), ``busy`` (batches inside the runner) and ``copies_seen`` (whether
the last batch that moved anything copied: it decides whether the next runs in place).

Threads: the coordinator dispatches; the scanner claims inline batches (holding intake's lock:
the order is intake, then lanes, never the reverse); batch threads end batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from reorg_tui.engine.intake import Intake
from reorg_tui.engine.kinds import Ready
from reorg_tui.engine.move import Mover

log = logging.getLogger(__name__)
SLOW_FSYNC = 0.0005  # seconds: an fsync slower than this is real I/O worth overlapping
INLINE_WAIT = 0.05  # seconds: a scanner moving what it lists takes a part batch after this long


class Lanes:
    def __init__(
        self,
        *,
        workers: int,
        batch_size: int,
        intake: Intake,
        mover: Mover,
        work: Callable[[list[Ready]], None],
        may_move: Callable[[], bool],
        wake: threading.Event,
        stopping: threading.Event,
        copies: bool,
    ) -> None:
        self.workers = workers
        self.batch_size = batch_size
        self.intake = intake
        self.mover = mover
        self._work = work  # moves one batch and applies its result
        self._may_move = may_move  # not paused by an operator, nor by the disk gate
        self._wake = wake
        self._stopping = stopping
        self._lock = threading.Lock()
        self._batches = 0
        self._inlined_at = 0.0  # monotonic
        self.busy = 0
        self.copies_seen = copies  # to start with: whether source and destination differ in device

    def count(self) -> int:
        """How many batches may run at once (see the module's opening comment)."""
        waits = self.mover.fsync_seconds >= SLOW_FSYNC or self.mover.fsync_seconds == 0.0
        return self.workers if self.copies_seen and waits else 1

    def running(self) -> int:
        with self._lock:
            return self._batches

    def moved(self, copies: int, renames: int) -> None:
        """What the last batch did decides where the next one runs."""
        if copies or renames:
            with self._lock:
                self.copies_seen = copies > 0

    # ---- the coordinator -------------------------------------------------------------------------

    def dispatch(self, pool: ThreadPoolExecutor, stop: threading.Event) -> None:
        lanes = self.count()
        here = lanes == 1 and not self.copies_seen
        while not stop.is_set() and self._may_move():  # (checked again between batches)
            with self._lock:
                if self._batches >= lanes:
                    return
                if self.intake.scanning and lanes == 1 and time.monotonic() - self._inlined_at < INLINE_WAIT:
                    return  # the scanner takes the ready files itself (unless it finds none for a while)
                waiting = self.intake.ready_count()
                if not waiting:
                    return
                share = waiting if here else -(-waiting // self.workers)
                self._batches += 1
            batch = self.intake.take(min(self.batch_size, max(1, share)))
            if not batch:  # taken at shutdown meanwhile
                self._ended(None)
                return
            if here:
                self.run_inline(batch)
                continue
            pool.submit(self._work, batch).add_done_callback(self._done)

    # ---- the scanner (intake's lock held) --------------------------------------------------------

    def scan_started(self) -> None:
        with self._lock:
            self._inlined_at = time.monotonic()

    def inline_due(self) -> bool:
        """INLINE_WAIT has passed since the scanner last took a batch (read without the lock: a
        float written by the scanner itself, and by nobody else while it scans)."""
        return time.monotonic() - self._inlined_at >= INLINE_WAIT

    def claim_inline(self) -> bool:
        """The one lane, for the scanner to move a batch itself, if it is free and moves may run."""
        if self._stopping.is_set() or not self._may_move():
            return False
        with self._lock:
            if self._batches or self.count() > 1:
                return False
            self._batches += 1
            self._inlined_at = time.monotonic()
        return True

    # ---- any batch thread ----------------------------------------------------------------------

    def run_inline(self, batch: list[Ready]) -> None:
        """Move a batch in this thread (the scanner's, or the coordinator's)."""
        error: BaseException | None = None
        try:
            self._work(batch)
        except Exception as exc:  # as a pool worker's would be: logged, and the run goes on
            error = exc
        finally:
            self._ended(error)

    @contextmanager
    def working(self) -> Iterator[None]:
        """Counts a batch as busy for as long as the block runs (the batch runner's work, not its
        events' hand-over: a subscriber told of a batch's end sees it no longer busy)."""
        with self._lock:
            self.busy += 1
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1

    def _done(self, future: Future[None]) -> None:
        self._ended(None if future.cancelled() else future.exception())
        self._wake.set()

    def _ended(self, error: BaseException | None) -> None:
        """A batch is over, moved in place or by the pool: its lane is free, and a scanner waiting
        for room may take the next batch itself."""
        with self._lock:
            self._batches -= 1
        self.intake.notify_space()
        if error is not None:
            log.error("a worker failed unexpectedly", exc_info=error)
