"""Counters, sliding windows and the Snapshot that every face reads.

Memory is constant however long the engine runs: windows are rings of one-second buckets and
time per file is kept as a bounded sample of recent moves.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from reorg_tui.engine.fields import build

WINDOWS = (10, 60, 300)  # seconds
# Upper bounds of the time-per-file histogram, in seconds (Prometheus convention: cumulative).
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ERROR_WINDOW = 60
_RING = max(WINDOWS) + 2
_SAMPLES = 2048


@dataclass(frozen=True)
class Totals:
    moved: int = 0
    bytes: int = 0
    ignored: int = 0  # names in the source at the last full scan that this tool does not take
    skipped: int = 0
    retried: int = 0
    quarantined: int = 0
    # An attempt is a file handled once: moved, skipped, failed or quarantined at once. A wait for
    # room is none (the disk alert has those). Each failed attempt is then retried, quarantined,
    # or (where not even the quarantine takes it) left in the source.
    attempts: int = 0
    failed_attempts: int = 0  # attempts that failed, or quarantined the file at once
    vanished: int = 0
    duplicates: int = 0  # files found already at their destination (crash recovery, dedupe)
    renamed: int = 0  # files moved under a collision name, name (1).ext (--on-conflict rename, dedupe)


@dataclass(frozen=True)
class Timing:
    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    max: float = 0.0


@dataclass(frozen=True)
class Queues:
    settling: int = 0  # seen, not yet still for `settle` seconds
    ready: int = 0  # waiting for a worker
    in_flight: int = 0  # handed to a worker
    retry: int = 0

    @property
    def waiting(self) -> int:
        """Every file seen and not yet moved: settling, ready, in flight or to retry."""
        return self.settling + self.ready + self.in_flight + self.retry


@dataclass(frozen=True)
class RetryItem:
    path: str
    attempts: int
    next_try: float | None  # wall clock; None while in flight
    last_error: str
    for_room: bool = False  # it found no room at the destination: it waits for the disk
    errors: tuple[str, ...] = ()  # its latest errors, oldest first, stamped (ERRORS_SHOWN at most)


@dataclass(frozen=True)
class Pending:
    """A file still in the source, waiting: what the Waiting view lists, longest first."""

    path: str  # relative to the source
    why: str  # one of WAITING_WHY
    since: float  # wall clock: when it was first seen (settling), ready, or first failed
    detail: str = ""  # settling: how long it has held still; retrying: attempts and the last error


WAITING_WHY = ("settling", "ready", "retrying", "waiting for room")
WAITING_SHOWN = 100  # the longest-waiting files a snapshot carries


@dataclass(frozen=True)
class Disk:
    free_bytes: int = 0
    total_bytes: int = 0
    free_percent: float = 100.0
    min_free_percent: float = 10.0
    free_inodes: int = 0  # as an unprivileged user sees them (f_favail); 0 of 0: none reported
    total_inodes: int = 0


@dataclass(frozen=True)
class QuarantineInfo:
    count: int = 0
    bytes: int = 0
    oldest: float | None = None


@dataclass(frozen=True)
class LogHealth:
    """Whether the process's own log is being written, as the face that writes it reports (the
    engine only carries it to ``status`` and the metrics). A log line is never waited for: lines
    the log could not take are dropped and counted."""

    dropped_lines: int = 0  # since start
    stalled_seconds: float = 0.0  # how long the current write has waited (nobody reads?); 0: none
    error: str | None = None  # why the latest write failed (ENOSPC, EPIPE, no stderr...); None: it did not

    @property
    def writable(self) -> bool:
        return not self.stalled_seconds and self.error is None


@dataclass(frozen=True)
class FleetView:
    """This instance as one of a fleet (``--coordinator``): never the URL, only host/db."""

    coordinator: str  # host/db
    lister: bool = False  # this instance lists the source now
    connected: bool = True
    claimed: int = 0  # files this instance holds claims on
    late: int = 0  # outcomes that came after their claim lapsed (a stall): recorded by nobody
    down_since: float | None = None  # when the coordinator stopped answering (wall clock)


@dataclass(frozen=True)
class Snapshot:
    taken_at: float
    state: str  # a State (kinds.py); a plain str once read back from JSON
    pause_reason: str | None
    source: str
    dest: str
    quarantine_dir: str
    watcher: str  # inotify, polling, degraded: ...
    started_at: float
    workers_total: int
    workers_busy: int
    totals: Totals
    files_per_second: dict[int, float]
    bytes_per_second: dict[int, float]
    error_rate: float  # failed attempts / attempts (see Totals) over ERROR_WINDOW seconds
    timing: Timing
    queues: Queues
    retry_head: tuple[RetryItem, ...]
    disk: Disk
    quarantine: QuarantineInfo
    scans: int
    last_scan_seconds: float
    history: tuple[tuple[int, int, int, int], ...] = field(default=())
    failures_by_reason: dict[str, int] = field(default_factory=dict)  # failed attempts; they sum to its total
    time_histogram: tuple[int, ...] = ()  # cumulative counts for BUCKETS, then +Inf
    time_total: float = 0.0
    alerts: tuple[str, ...] = ()
    alert_names: tuple[str, ...] = ()  # the rule behind each of ``alerts`` (alerts.RULES)
    last_scan_at: float | None = None  # when the latest full listing of the source ended (wall clock)
    first_move_at: float | None = None  # when this run's first file arrived (wall clock)
    last_move_at: float | None = None  # and its latest
    paused_at: float | None = None  # when an operator paused intake (wall clock); None if not paused
    log: LogHealth = field(default_factory=LogHealth)
    failure: str | None = None  # a thread of the engine died (vital.py): why; the run is stopping
    waiting: tuple[Pending, ...] = ()  # the files waiting longest, longest first (WAITING_SHOWN)
    phase: str | None = None  # while starting, what start-up is doing (a Phase, kinds.py); else None
    fleet: FleetView | None = None  # one of a fleet: how it stands with the coordinator

    @property
    def oldest_pending_age(self) -> float:
        """Seconds the longest-waiting file has waited (0 with none waiting)."""
        return max(0.0, self.taken_at - self.waiting[0].since) if self.waiting else 0.0

    @property
    def uptime(self) -> float:
        return max(0.0, self.taken_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Snapshot:
        """The inverse of to_dict, for a snapshot read back from JSON: every field checked
        (fields.build); raises BadState, in one line, for one this version did not write."""
        return build(cls, data, "snapshot")


class _Ring:
    """Per-second buckets of (files, bytes, attempts, failures)."""

    def __init__(self) -> None:
        self.stamp = [-1] * _RING
        self.data = [[0, 0, 0, 0] for _ in range(_RING)]

    def add(self, second: int, files: int, nbytes: int, attempts: int, failures: int) -> None:
        i = second % _RING
        if self.stamp[i] != second:
            self.stamp[i] = second
            self.data[i] = [0, 0, 0, 0]
        bucket = self.data[i]
        bucket[0] += files
        bucket[1] += nbytes
        bucket[2] += attempts
        bucket[3] += failures

    def series(self, now_second: int, seconds: int) -> list[tuple[int, int, int, int]]:
        """The last ``seconds`` full seconds, oldest first."""
        out = []
        for s in range(now_second - seconds, now_second):
            i = s % _RING
            b = self.data[i] if self.stamp[i] == s else (0, 0, 0, 0)
            out.append((b[0], b[1], b[2], b[3]))
        return out


class Metrics:
    def __init__(self, clock: Any = time.time, reasons: tuple[str, ...] = ()) -> None:
        """``reasons``: the failure reasons counted from 0 at start (others from their first)."""
        self.clock = clock
        self.started_at = clock()
        self._lock = threading.Lock()
        self._ring = _Ring()
        self._samples: deque[float] = deque(maxlen=_SAMPLES)
        self._time_total = 0.0
        self._time_max = 0.0
        self.counts: dict[str, int] = dict.fromkeys(Totals.__dataclass_fields__, 0)
        self.reasons = dict.fromkeys(reasons, 0)  # failed attempts by reason (a small, bounded set)
        self._buckets = [0] * (len(BUCKETS) + 1)
        self.first_move_at: float | None = None  # wall clock, the run's first file to arrive
        self.last_move_at: float | None = None  # and its latest

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                self.counts[key] += value

    def set_ignored(self, value: int) -> None:
        with self._lock:
            self.counts["ignored"] = value

    def record(
        self,
        *,
        moved: int,
        nbytes: int,
        attempts: int,
        failures: int,
        durations: list[float],
        reasons: list[str] | None = None,
        arrived: tuple[float | None, float | None] = (None, None),
    ) -> None:
        """Merge one batch's results: one lock round per batch, not per file. ``attempts``: files
        handled (see Totals); ``failures``: those that failed, with ``reasons`` their labels.
        ``arrived``: when its first and last file arrived (wall clock), if any did."""
        now = self.clock()
        first, last = arrived
        with self._lock:
            if first is not None and self.first_move_at is None:
                self.first_move_at = first
            if last is not None:
                self.last_move_at = max(last, self.last_move_at or last)
            self._ring.add(int(now), moved, nbytes, attempts, failures)
            self.counts["moved"] += moved
            self.counts["bytes"] += nbytes
            self.counts["attempts"] += attempts
            self.counts["failed_attempts"] += failures
            for reason in reasons or ():
                self.reasons[reason] = self.reasons.get(reason, 0) + 1
            self._samples.extend(durations)
            if durations:
                self._time_total += sum(durations)
                self._time_max = max(self._time_max, max(durations))
                for d in durations:
                    self._buckets[bisect.bisect_left(BUCKETS, d)] += 1

    def histogram(self) -> tuple[tuple[int, ...], float, dict[str, int]]:
        """Cumulative bucket counts (the last is +Inf), the sum of seconds, failures by reason."""
        with self._lock:
            counts, total, reasons = list(self._buckets), self._time_total, dict(self.reasons)
        return tuple(itertools.accumulate(counts)), total, reasons

    def read(self) -> tuple[Totals, dict[int, float], dict[int, float], float, Timing, tuple[Any, ...]]:
        now = self.clock()
        second = int(now)
        age = max(1.0, now - self.started_at)
        with self._lock:
            totals = Totals(**self.counts)
            history = self._ring.series(second + 1, max(WINDOWS))
            samples = sorted(self._samples)
            mean = self._time_total / self.counts["moved"] if self.counts["moved"] else 0.0
            slowest = self._time_max
        files: dict[int, float] = {}
        nbytes: dict[int, float] = {}
        for window in WINDOWS:
            part = history[-window:]
            span = min(float(window), age)
            files[window] = sum(b[0] for b in part) / span
            nbytes[window] = sum(b[1] for b in part) / span
        recent = history[-ERROR_WINDOW:]
        attempts = sum(b[2] for b in recent)
        error_rate = sum(b[3] for b in recent) / attempts if attempts else 0.0
        timing = Timing(mean, _quantile(samples, 0.5), _quantile(samples, 0.95), slowest)
        return totals, files, nbytes, error_rate, timing, tuple(history)


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
