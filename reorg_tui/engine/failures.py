"""Failures: what becomes of a file whose move failed. A retry later (with backoff), the
quarantine (with its reason), or, where not even the quarantine takes it, the source.

Owns, under its own lock: the retry queue, the run's tally (``RunResult``) and the quarantine's
count, bytes and oldest time as this process knows them. The queue is saved to the ledger and
the counts are read from the quarantine's index: neither reads a file per entry.

Threads: whichever thread moves a batch (the scanner, the coordinator or a pool worker) calls
``failed``, ``quarantine`` and ``forget``; the coordinator takes due retries; the housekeeper saves
the queue; any thread reads the counts. ``rel in failures`` is read without the lock (a dict
lookup): only the worker holding a file in flight adds it, so a reader that misses an entry
being added also finds the file still claimed by intake.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reorg_tui.engine import events as ev
from reorg_tui.engine.bus import EventBus
from reorg_tui.engine.clocks import Now, now_of
from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.disk import DiskGate
from reorg_tui.engine.errors import NO_DESCRIPTORS, NO_ROOM, TRANSIENT, MoveError, Unsafe, Vanished
from reorg_tui.engine.kinds import Kind
from reorg_tui.engine.ledger import Ledger, LedgerError
from reorg_tui.engine.metrics import Metrics, Pending, RetryItem
from reorg_tui.engine.quarantine import QuarantineStats, QuarantineStore, StuckInQuarantine
from reorg_tui.engine.retry import LEGACY_NAME, RetryQueue, backoff, stamped
from reorg_tui.engine.settings import EngineSettings
from reorg_tui.names import safe

log = logging.getLogger(__name__)
ERRORS_SHOWN = 5  # of a retried file's errors, the latest, in the snapshot (its details show them)


@dataclass
class RunResult:
    """What a run did, for its exit code (``--once``: anything quarantined or left is exit 1)."""

    moved: int = 0
    quarantined: int = 0
    failed: int = 0
    left: list[str] = field(default_factory=list)


class Failures:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        bus: EventBus,
        metrics: Metrics,
        gate: DiskGate,
        store: QuarantineStore,
        sources: Tree,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic  # when a retry is due is counted on this one
        self.bus = bus
        self.metrics = metrics
        self.gate = gate
        self.store = store
        self.sources = sources
        self.release = release  # closes the cached folder descriptors (after an EMFILE)
        # In memory until ``use`` hands it the ledger (at start, once the source is held).
        self.retry = RetryQueue(None, legacy=settings.state_dir / LEGACY_NAME)
        # Files waiting for a retry, by path (the queue's own dict, never replaced): read without
        # the lock, once per file, by intake and by ``forget`` (see the opening comment).
        self.waiting = self.retry.entries
        self.result = RunResult()
        self.once = False  # --once: a file not even the quarantine takes is left, not retried
        self._lock = threading.Lock()
        # Files whose last try found no room (no attempt counted): the faces say "waiting for
        # room" for them, not a time. In memory: after a restart each is tried, and says again.
        self._for_room: set[str] = set()
        self._stats = QuarantineStats()

    # ---- the retry queue ---------------------------------------------------------------------

    def __contains__(self, rel: str) -> bool:
        return rel in self.waiting

    def __len__(self) -> int:
        return len(self.retry)

    def attempts(self, rel: str) -> int:
        with self._lock:
            return self.retry.attempts(rel)

    def errors(self, rel: str) -> list[str]:
        """The errors of its earlier attempts, oldest first (stamped with their times)."""
        with self._lock:
            return self.retry.errors(rel)

    def due(self, limit: int) -> list[str]:
        """Files whose next try has come; they stay in the queue until forgotten."""
        now = self._now()
        with self._lock:
            return self.retry.pop_due(now, limit)

    def due_in(self) -> float | None:
        """Seconds until the next retry comes due, if one waits (monotonic)."""
        with self._lock:
            due = self.retry.next_due()
        return None if due is None else due - self.monotonic()

    def _now(self) -> Now:
        return now_of(self.clock, self.monotonic)

    def head(self, limit: int) -> tuple[RetryItem, ...]:
        with self._lock:
            entries = self.retry.head(limit)
            for_room = {e.path for e in entries if e.path in self._for_room}
        return tuple(
            RetryItem(
                e.path,
                e.attempts,
                e.next_try,
                e.last_error,
                e.path in for_room,
                tuple(e.errors[-ERRORS_SHOWN:]),
            )
            for e in entries
        )

    def longest(self, count: int) -> list[Pending]:
        """The ``count`` files retried longest (since their first failure), or waiting for room."""
        with self._lock:
            oldest = heapq.nsmallest(count, self.retry.entries.values(), key=lambda e: e.first_failed)
            for_room = {e.path for e in oldest if e.path in self._for_room}
        return [
            Pending(e.path, "waiting for room", e.first_failed, e.last_error)
            if e.path in for_room
            else Pending(e.path, "retrying", e.first_failed, f"attempt {e.attempts}: {e.last_error}")
            for e in oldest
            if e.first_failed
        ]

    def forget(self, rel: str) -> None:
        if rel not in self.waiting:  # the usual case, and only this file's worker would add it
            return
        with self._lock:
            self.retry.forget(rel)
            self._for_room.discard(rel)

    def use(self, ledger: Ledger | None) -> None:
        """Save the retry queue to ``ledger`` from now on (None: keep it in memory)."""
        with self._lock:
            self.retry.ledger = ledger

    def load(self) -> int:
        """The queue an earlier run saved, through today's settings: an entry for a file they
        do not take is dropped with a log line (retry.py). Returns how many files wait."""
        naming, recursive = self.settings.naming(), self.settings.recursive
        with self._lock:
            self.retry.load(self._now(), self.settings.retry_max_delay)
            dropped = self.retry.drop_not_taken(lambda rel: naming.not_taken(rel, recursive))
            waiting = len(self.retry)
        for rel, why in dropped:
            path = os.path.join(self.settings.source, rel)
            log.info(
                "dropped %s from the retry queue: %s, so it stays in the source untouched",
                path,
                why.value,
                extra={"event": "retry_dropped", "fields": {"file": safe(path), "reason": why.name.lower()}},
            )
        return waiting

    def save(self) -> None:
        with self._lock:
            try:
                self.retry.save()
            except (OSError, LedgerError) as exc:
                log.warning("cannot save the retry queue: %s (tried again in a second)", exc)

    # ---- one failed attempt --------------------------------------------------------------------

    def failed(self, rel: str, src: str, exc: MoveError, intended: str) -> Kind:
        """A retry later, or the quarantine; WAITING where there was no room or no descriptor
        free (no attempt), else FAILED."""
        message = str(exc)
        if exc.code in NO_ROOM or exc.code in NO_DESCRIPTORS:
            if exc.code in NO_ROOM:
                self.gate.check()
            else:
                self.release()  # the caches' descriptors: the next try finds some free
            delay = self._retry_later(rel, message, count_attempt=False, for_room=exc.code in NO_ROOM)
            self.bus.emit(ev.Waiting(src, message, delay))
            return Kind.WAITING
        attempt = self.attempts(rel) + 1
        if exc.transient and attempt <= self.settings.max_retries:
            delay = self._retry_later(rel, message, count_attempt=True)
            self.metrics.add(retried=1)
            self.bus.emit(ev.Retried(src, attempt, message, delay))
            return Kind.FAILED
        self.quarantine(rel, src, message, intended, attempts=attempt)
        return Kind.FAILED

    def _retry_later(self, rel: str, message: str, *, count_attempt: bool, for_room: bool = True) -> float:
        with self._lock:
            attempt = self.retry.attempts(rel) + (1 if count_attempt else 0)
            # A wait that does not count as an attempt (no room) still backs off, by how many
            # times this file has failed so far: a disk that keeps refusing is not hammered.
            step = attempt if count_attempt else len(self.retry.errors(rel)) + 1
            delay = backoff(max(1, step), self.settings.retry_base_delay, self.settings.retry_max_delay)
            self.retry.schedule(rel, attempt, delay, message, self._now())
            if count_attempt or not for_room:
                self._for_room.discard(rel)
            else:
                self._for_room.add(rel)
        return delay

    def quarantine(self, rel: str, src: str, reason: str, intended: str | None, attempts: int) -> None:
        with self._lock:
            errors = self.retry.errors(rel)
            first = self.retry.entries[rel].first_failed if rel in self.retry else None
        errors.append(stamped(reason, self.clock()))
        try:
            record = self.store.put(
                self.sources,
                rel,
                reason=reason,
                intended=intended,
                attempts=attempts,
                errors=errors,
                first_failed_at=first,
            )
        except Vanished:
            self.forget(rel)
            self.metrics.add(vanished=1)
            return
        except Unsafe:
            self.forget(rel)
            raise  # not even into the quarantine: the batch leaves it in the source
        except StuckInQuarantine as exc:
            # Quarantined all the same: the file is there, with its record; say what went wrong.
            record = exc.record
            self.bus.warn(f"{src}: {exc}")
        except (MoveError, OSError) as exc:
            code = exc.code if isinstance(exc, MoveError) else exc.errno
            if code in NO_DESCRIPTORS:
                # No descriptor free to quarantine it with: that is a wait, not a verdict.
                self.release()
                delay = self._retry_later(rel, reason, count_attempt=False, for_room=False)
                self.bus.emit(ev.Waiting(src, f"{reason}; quarantine it: {exc}", delay))
                return
            # Not even the quarantine will take it: it stays in the source, tried again later.
            message = f"{reason}; and could not be quarantined: {exc}"
            with self._lock:
                self.result.failed += 1
                if self.once:
                    self.retry.forget(rel)
                    self.result.left.append(f"{src}: {message}")
                else:
                    delay = self.settings.retry_max_delay
                    self.retry.schedule(rel, attempts, delay, message, self._now())
            self.bus.emit(ev.Failed(src, message))
            return
        self.forget(rel)
        self.metrics.add(quarantined=1)
        with self._lock:
            self.result.quarantined += 1
            q = self._stats
            self._stats = QuarantineStats(
                q.count + 1, q.bytes + record.size, q.oldest if q.oldest is not None else self.clock()
            )
        self.bus.emit(ev.Quarantined(src, reason, attempts, record.id))

    # ---- the run's tally and the quarantine's counts -------------------------------------------

    def moved(self, count: int) -> None:
        with self._lock:
            self.result.moved += count

    def left(self, line: str) -> None:
        with self._lock:
            self.result.left.append(line)

    @property
    def quarantine_stats(self) -> QuarantineStats:
        return self._stats  # replaced whole, never changed in place

    def count_quarantine(self) -> None:
        """Count the quarantine again (after a scan, a release, a delete): from its index, so
        the cost does not grow with it; a record another process added or removed is noticed
        by the folder's mtime (see quarantine.py)."""
        try:
            stats = self.store.stats()
        except (OSError, LedgerError) as exc:
            log.warning("cannot count the quarantine now: %s", exc)
            return
        with self._lock:
            self._stats = stats


# Reasons of the files quarantined at once, beside the errno names of failed attempts.
INVALID_DATE = "invalid_date"  # the date in its name does not exist
COLLISION = "collision"  # its name is taken and --on-conflict says quarantine
# Every reason the engine counts a failure under that it can foresee, each counted from 0 at
# start (a counter that appears only with its first failure hides that failure from a rate()):
# what it retries, less the waits for room (no attempt); what a rename, a copy or a new folder
# can meet that no retry mends; the quarantine at once; "other" (no errno). Another errno
# still counts, under its name, from when it first happens.
_PERMANENT = frozenset(
    {
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.EINVAL,
        errno.EFBIG,
        errno.EMLINK,
        errno.EOVERFLOW,
    }
)
KNOWN_REASONS: tuple[str, ...] = (
    *sorted(errno.errorcode[code] for code in (TRANSIENT - NO_ROOM) | _PERMANENT),
    INVALID_DATE,
    COLLISION,
    "other",
)


def reason_label(exc: MoveError) -> str:
    """A short, bounded label for metrics: the errno name, or "other"."""
    return errno.errorcode.get(exc.code, "other") if exc.code is not None else "other"
