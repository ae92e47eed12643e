"""The Engine: wires scanning, readiness, the worker pool, retries, quarantine and the disk gate.

Threads:
- the caller of ``run(stop)``: the coordinator. It turns hints and settled files into ready
  work, dispatches batches, and watches the disk gate and the retry schedule.
- the scanner: full listings of the source, streamed, with backpressure from the ready queue.
  Where moves run one lane at a time (renames on one filesystem, copies to a disk that does not
  make them wait), it moves what it lists itself, batch by batch (see ``_inline_batch``).
- the watchdog observer: hints only.
- the pool: ``workers`` threads moving batches of files.

One path is in at most one of these places at a time: settling, ready or in flight (claimed),
waiting for a retry, or remembered as skipped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from reorg_tui.config import Settings
from reorg_tui.engine import events as ev
from reorg_tui.engine.alerts import evaluate
from reorg_tui.engine.control import ControlServer
from reorg_tui.engine.dirs import Tree, raise_open_file_limit
from reorg_tui.engine.disk import DiskGate
from reorg_tui.engine.errors import NO_ROOM, Abandoned, Changed, Conflict, MoveError, Vanished
from reorg_tui.engine.lock import SourceLock
from reorg_tui.engine.metrics import (
    Disk,
    Metrics,
    QuarantineInfo,
    Queues,
    RetryItem,
    Snapshot,
)
from reorg_tui.engine.move import Mover, Outcome, RenameLane
from reorg_tui.engine.naming import InvalidDate
from reorg_tui.engine.publish import Publisher
from reorg_tui.engine.quarantine import QuarantineStats, QuarantineStore, Record
from reorg_tui.engine.readiness import Readiness
from reorg_tui.engine.retry import RetryQueue, backoff, stamped
from reorg_tui.engine.store import remove_leftovers
from reorg_tui.engine.watch import ScanCount, Watcher, scan

log = logging.getLogger(__name__)
Subscriber = Callable[[list[ev.Event]], None]
LARGE_FILE = 64 * 1024 * 1024  # above this, check headroom for the file itself before a copy
SLOW_FSYNC = 0.0005  # seconds: an fsync slower than this is real I/O worth overlapping
MOVED_KINDS = frozenset({"moved", "copied", "twin", "deduped"})
EVENT_HOLD = 0.1  # seconds: a worker hands its events over in batches at least this often
SETTLE_ROUND = 0.05  # seconds: settled files are taken in rounds this far apart at most
INLINE_WAIT = 0.05  # seconds: a scanner moving what it lists takes a part batch after this long
FULL_SCAN_EVERY = 20  # polls: a full listing at least this often, even of an unchanged folder


@dataclass
class RunResult:
    moved: int = 0
    quarantined: int = 0
    failed: int = 0
    left: list[str] = field(default_factory=list)


class Engine:
    """The core. Knows nothing of Textual or the command line; every face reads snapshot()."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.naming = settings.naming()
        self.source = str(settings.source)
        self.dest = str(settings.dest)
        self._abandon = threading.Event()
        # Both trees are reached through folder descriptors, never by re-resolving path strings:
        # a symlink planted below either root is refused, not followed.
        self.sources = Tree(self.source, create_root=False)
        # One descriptor per destination folder in use: a year of date folders is 378 of them,
        # and a cache smaller than the working set would reopen a folder for most files.
        folders = max(64, min(4096, raise_open_file_limit() // 4))
        self.mover = Mover(
            Tree(self.dest, capacity=folders), verify=settings.verify, stop=self._abandon, room=self._room_for
        )
        self.quarantine = QuarantineStore(settings.quarantine, verify=settings.verify)
        self.retry = RetryQueue(settings.state_dir / "retry.json")
        self.metrics = Metrics(clock)
        self.gate = DiskGate(self.dest, settings.min_free_percent)
        self.lock = SourceLock(settings.source, settings.state_dir)
        self.publisher = Publisher(settings.state_dir)
        self.control = ControlServer(
            settings.state_dir,
            {"pause": self._remote_pause, "resume": self._remote_resume, "ping": lambda: self._state_name()},
        )
        self.rules = settings.alert_rules()
        self._alerts: dict[str, str] = {}

        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)  # the scanner waits here for room
        self._wake = threading.Event()
        self._scan_now = threading.Event()
        self._stopping = threading.Event()
        self._claimed: set[str] = set()
        # (path, its lstat when found ready, or None to look again)
        self._ready: deque[tuple[str, os.stat_result | None]] = deque()
        self._ready_cap = max(1024, settings.workers * settings.batch_size * 2)
        self.readiness = Readiness(settings.settle)
        self._unsynced: set[str] = set()  # destination folders with renames not yet fsynced
        self._parallel = _other_filesystem(self.source, self.dest)
        self._inlining = False  # a scan is on: with one lane, the scanner moves what it finds
        self._inlined_at = 0.0  # (monotonic) when the scanner last took a batch, or its scan began
        self._batches = 0
        self._busy = 0
        self._subscribers: list[Subscriber] = []
        self._held = threading.local()  # a worker's events, held until its batch (or EVENT_HOLD) ends
        self._paused = False
        self._state = "starting"
        self._scans = 0
        self._scan_seconds = 0.0
        self._scanning = False
        self._quarantine_stats = QuarantineStats()
        self._result = RunResult()
        self._once = False
        self.watcher = Watcher(
            self.source,
            settings.recursive,
            on_hint=self._wake.set,
            on_scan_request=self._request_scan,
            on_warning=self._warn,
        )

    # ---- the interface every face uses -------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        """Called from engine threads with events in the order they happened, several at a time
        under load (a worker hands over what one batch did): keep it quick, never touch a UI."""
        self._subscribers.append(callback)

    def pause(self) -> None:
        with self._lock:
            if self._paused:
                return
            self._paused = True
        self._emit(ev.Paused("operator"))
        self._wake.set()

    def resume(self) -> None:
        with self._lock:
            if not self._paused:
                return
            self._paused = False
            self._space.notify_all()  # a scanner held up by the pause goes on moving what it lists
        self._emit(ev.Resumed("operator"))
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def snapshot(self) -> Snapshot:
        totals, files, nbytes, error_rate, timing, history = self.metrics.read()
        buckets, time_total, reasons = self.metrics.histogram()
        with self._lock:
            state = self._state_name()
            queues = Queues(
                settling=len(self.readiness),
                ready=len(self._ready),
                in_flight=len(self._claimed) - len(self._ready),
                retry=len(self.retry),
            )
            head = tuple(
                RetryItem(e.path, e.attempts, 0.0 if e.next_try == float("inf") else e.next_try, e.last_error)
                for e in self.retry.head(100)
            )
            busy, qstats = self._busy, self._quarantine_stats
        room = self.gate.last
        disk = Disk(min_free_percent=self.settings.min_free_percent)
        if room is not None:
            disk = Disk(room.free_bytes, room.total_bytes, room.free_percent, self.settings.min_free_percent)
        reason = None
        if state == "paused":
            reason = "paused by operator"
        elif state == "paused-disk":
            reason = self.gate.error or (
                f"destination has {disk.free_percent:.1f}% free, "
                f"under the {self.settings.min_free_percent:g}% minimum"
            )
        return Snapshot(
            taken_at=self.clock(),
            state=state,
            pause_reason=reason,
            source=self.source,
            dest=self.dest,
            quarantine_dir=str(self.settings.quarantine),
            watcher=self.watcher.mode,
            started_at=self.metrics.started_at,
            workers_total=self.settings.workers,
            workers_busy=busy,
            totals=totals,
            files_per_second=files,
            bytes_per_second=nbytes,
            error_rate=error_rate,
            timing=timing,
            queues=queues,
            retry_head=head,
            disk=disk,
            quarantine=QuarantineInfo(qstats.count, qstats.bytes, qstats.oldest),
            scans=self._scans,
            last_scan_seconds=self._scan_seconds,
            history=history,
            failures_by_reason=reasons,
            time_histogram=buckets,
            time_total=time_total,
            alerts=tuple(self._alerts.values()),
        )

    def quarantine_list(self) -> list[Record]:
        return self.quarantine.list()

    def release(self, item_id: str) -> str:
        """Send a quarantined file back through the pipeline, attempts reset."""
        path = self.quarantine.release(item_id, self.settings.source)
        rel = os.path.relpath(path, self.source)
        with self._lock:
            self.retry.forget(rel)
        self._refresh_quarantine_stats()
        self._request_scan()
        return path

    def delete(self, item_id: str) -> Record:
        record = self.quarantine.delete(item_id)
        self._refresh_quarantine_stats()
        return record

    # ---- running ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> RunResult:
        """Run until ``stop`` is set (or, with once, until the source is done). Drains, then
        returns. Raises AlreadyRunning if another instance holds the source."""
        self.lock.acquire()
        self._once = once
        try:
            self.settings.state_dir.mkdir(parents=True, exist_ok=True)
            self.settings.state_dir.chmod(0o700)  # the control socket and state are the owner's only
            self.subscribe(self.publisher.on_events)
            warning = self.control.start()
            if warning:
                self._warn(warning)
            self._start(once)
            pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="reorg-move")
            scanner = threading.Thread(target=self._scan_loop, args=(once,), name="reorg-scan", daemon=True)
            scanner.start()
            keeper = threading.Thread(target=self._housekeeping, name="reorg-housekeeping", daemon=True)
            keeper.start()
            try:
                self._coordinate(stop, pool, once)
            finally:
                self._shutdown(pool, scanner, keeper)
        finally:
            self.control.stop()
            self._publish()
            self.sources.close()
            self.mover.tree.close()
            self.lock.release()
        return self._result

    def _start(self, once: bool) -> None:
        self.quarantine.ensure()
        cleaned = self.mover.recover() + self.quarantine.repair() + remove_leftovers(self.settings.state_dir)
        if cleaned:
            self._warn(f"recovered from an interrupted run: removed or repaired {cleaned} leftover(s)")
        loaded = self.retry.load()
        if loaded:
            log.info("restored %d file(s) waiting for a retry", loaded)
        self._refresh_quarantine_stats()
        self.gate.check()
        if not once:
            self.watcher.start()
        self._state = "running"

    def _coordinate(self, stop: threading.Event, pool: ThreadPoolExecutor, once: bool) -> None:
        last_gate = 0.0
        gate_open = not self.gate.closed
        generation = self.gate.generation
        if not gate_open:
            self._emit(ev.Paused("disk"))
        while not stop.is_set():
            now = self.clock()
            self._take_hints(now)
            self._settle_due(now)
            with self._lock:
                for rel in self.retry.pop_due(now, self._ready_cap):
                    self._claimed.add(rel)
                    self._ready.append((rel, None))
            if now - last_gate >= 0.25 or not gate_open:
                last_gate = now
                was_open, gate_open = gate_open, self.gate.check()
                if was_open != gate_open:
                    self._emit(ev.Resumed("disk") if gate_open else ev.Paused("disk"))
                if self.gate.generation != generation:
                    generation = self.gate.generation  # remounted: the old descriptors are stale
                    self.mover.tree.forget()
            if gate_open and not self._paused:
                self._dispatch(pool, stop)
            if once and self._once_done():
                break
            if once and not gate_open:
                self._result.left.append(self.snapshot().pause_reason or "destination is short of space")
                break
            self._wake.wait(self._timeout(now))
            self._wake.clear()

    def _timeout(self, now: float) -> float:
        wait = 0.25
        with self._lock:
            settle_due = self.readiness.next_due()
            if settle_due is not None:
                # Under a stream a file comes due every fraction of a millisecond: waking for each
                # would move them one by one. Files that come due within SETTLE_ROUND are taken
                # together (a file waits at most that much longer than its settle time).
                wait = min(wait, max(SETTLE_ROUND, settle_due - now))
            due = self.retry.next_due()
            if due is not None:
                wait = min(wait, due - now)
        return max(0.005, wait)

    def _once_done(self) -> bool:
        with self._lock:
            return (
                not self._scanning
                and self._scans > 0
                and not self._claimed
                and not len(self.readiness)
                and not len(self.retry)
            )

    def _housekeeping(self) -> None:
        """Once a second, off the coordinator (a folder fsync can take milliseconds each, and
        moves must not wait for them): make recent renames durable, let go of idle folders,
        save the retry queue, evaluate alerts, publish the state, check the watcher."""
        while not self._stopping.wait(1.0):
            try:
                self._sync_folders()
                self._release_folders_when_idle()
                self._save_retry()
                self._check_alerts()
                self._publish()
                self.watcher.check()
            except Exception:  # housekeeping must go on; the next round tries again
                log.exception("housekeeping failed")

    def _shutdown(
        self, pool: ThreadPoolExecutor, scanner: threading.Thread, keeper: threading.Thread
    ) -> None:
        self._state = "draining"
        self._stopping.set()
        self._abandon.set()  # in-flight copies stop at their next chunk; their sources stay
        with self._space:
            self._space.notify_all()
        self._scan_now.set()
        self.watcher.stop()
        deadline = time.monotonic() + self.settings.shutdown_timeout
        pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline:
            with self._lock:
                if self._batches == 0:
                    break
            time.sleep(0.01)
        scanner.join(timeout=max(0.0, deadline - time.monotonic()))
        keeper.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._claimed.clear()
            self._ready.clear()
        self._sync_folders()
        self._save_retry()
        self._state = "stopped"

    # ---- finding work --------------------------------------------------------------------

    def _request_scan(self) -> None:
        self._scan_now.set()

    def _scan_loop(self, once: bool) -> None:
        while not self._stopping.is_set():
            self._scan_now.clear()
            started = time.monotonic()
            listed = _mtime_ns(self.source), time.time_ns()  # before the listing: a change during it shows
            count = ScanCount()
            with self._lock:
                self._scanning = True
                generation = self._scans
                # Where moves run one lane at a time anyway (renames on one filesystem, copies
                # that do not wait for the disk), the scanner moves what it lists itself, batch by
                # batch, with no hand-over to another thread (a hand-over costs a switch of the
                # interpreter lock per system call, both ways).
                self._inlining = True
                self._inlined_at = time.monotonic()
            seen: set[str] = set()
            for rel, st in scan(self.source, self.naming, self.settings.recursive, count):
                if self._stopping.is_set():
                    break
                if self.readiness.is_skipped(rel):
                    seen.add(rel)
                with self._lock:  # (self._space is this lock too; waited on below)
                    self._offer(rel, st, self.clock())
                    inline = self._inline_batch()
                    while (
                        inline is None and len(self._ready) >= self._ready_cap and not self._stopping.is_set()
                    ):
                        self._space.wait(0.5)
                        inline = self._inline_batch()
                if inline:
                    self._run_inline(inline)
                elif len(self._ready) and not count.taken % 64:
                    self._wake.set()
            with self._lock:
                self._inlining = False
                self.readiness.forget_skips(generation, seen)
                self._scanning = False
                self._scans += 1
            self._scan_seconds = time.monotonic() - started
            self.metrics.set_ignored(count.ignored)
            if not self._stopping.is_set():
                self.watcher.check_coverage(count.folders)
            self._refresh_quarantine_stats()
            self._wake.set()
            if once:
                return
            self._wait_for_a_change(*listed)

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
            if self._scan_now.wait(self.settings.poll_interval) or self._stopping.is_set():
                return
            self._refresh_quarantine_stats()
            if self.settings.recursive or mtime_ns is None or listed_ns - mtime_ns < 1_000_000_000:
                return
            if _mtime_ns(self.source) != mtime_ns:
                return

    def _offer(self, rel: str, st: os.stat_result, now: float) -> None:
        """A regular file the naming wants was seen; queued if it is ready. Lock held."""
        if rel in self._claimed or rel in self.retry:
            return
        if self.readiness.offer(rel, st, now):
            self._make_ready(rel, st)

    def _make_ready(self, rel: str, st: os.stat_result) -> None:
        self.readiness.drop(rel)
        self._claimed.add(rel)
        self._ready.append((rel, st))

    def _take_hints(self, now: float) -> None:
        seen = []
        for rel in self.watcher.take_hints():
            name = rel.rpartition("/")[2]
            if not self.naming.wants(name) or (name != rel and not self.settings.recursive):
                continue
            try:
                st = self._lstat_source(rel)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                seen.append((rel, st))
        if seen:
            with self._lock:  # once for all the hints gathered since the last round
                for rel, st in seen:
                    self._offer(rel, st, now)

    def _lstat_source(self, rel: str) -> os.stat_result:
        return os.lstat(f"{self.source}/{rel}")  # metadata only: a move opens no-follow

    def _settle_due(self, now: float) -> None:
        with self._lock:
            for rel, st in self.readiness.take_due(now, self._lstat_source):
                self._make_ready(rel, st)

    # ---- moving -----------------------------------------------------------------------------

    def _dispatch(self, pool: ThreadPoolExecutor, stop: threading.Event) -> None:
        workers = self.settings.workers
        lanes = self._lanes()
        # Renames (one lane, each done in well under a millisecond) are moved by the coordinator
        # itself: handing a batch to a pool thread costs a switch of the interpreter lock per
        # system call while the two run side by side. Copies go to the pool, where a stop can
        # abandon one mid-file.
        here = lanes == 1 and not self._parallel
        while not (stop.is_set() or self._paused or self.gate.closed):  # (checked again between batches)
            with self._lock:
                if self._batches >= lanes or not self._ready:
                    return
                if self._inlining and lanes == 1 and time.monotonic() - self._inlined_at < INLINE_WAIT:
                    return  # the scanner takes the ready files itself (unless it finds none for a while)
                share = len(self._ready) if here else -(-len(self._ready) // workers)
                size = min(self.settings.batch_size, max(1, share))
                batch = [self._ready.popleft() for _ in range(min(size, len(self._ready)))]
                self._batches += 1
                self._space.notify_all()
            if here:
                self._run_inline(batch)
                continue
            future = pool.submit(self._work, batch)
            future.add_done_callback(self._batch_done)

    def _lanes(self) -> int:
        """How many batches may run at once. Renames within one filesystem are metadata operations
        the kernel serializes per folder: several threads doing them only contend (for the folder
        lock and the GIL), so they run one batch at a time. Copies use every worker where the
        disk makes them wait (fsync), and one lane where it does not (a tmpfs, a write cache):
        there, threads would only contend."""
        waits = self.mover.fsync_seconds >= SLOW_FSYNC or self.mover.fsync_seconds == 0.0
        return self.settings.workers if self._parallel and waits else 1

    def _inline_batch(self) -> list[tuple[str, os.stat_result | None]] | None:
        """A batch for the scanner to move itself: a full one, or what is ready once INLINE_WAIT
        has passed since its last. Lock held."""
        size = self.settings.batch_size
        now = time.monotonic()
        if len(self._ready) < size and (not self._ready or now - self._inlined_at < INLINE_WAIT):
            return None  # the usual answer, for all but one file a batch: asked first
        if self._batches or not self._inlining or self._paused or self.gate.closed:
            return None
        if self._stopping.is_set() or self._lanes() > 1:
            return None
        self._batches += 1
        self._inlined_at = now
        return [self._ready.popleft() for _ in range(min(size, len(self._ready)))]

    def _run_inline(self, batch: list[tuple[str, os.stat_result | None]]) -> None:
        """Move a batch in this thread (the scanner's, or the coordinator's)."""
        error: BaseException | None = None
        try:
            self._work(batch)
        except Exception as exc:  # as a pool worker's would be: logged, and the run goes on
            error = exc
        finally:
            self._batch_ended(error)

    def _batch_done(self, future: Future[None]) -> None:
        self._batch_ended(None if future.cancelled() else future.exception())
        self._wake.set()

    def _batch_ended(self, error: BaseException | None) -> None:
        """A batch is over, moved in place or by the pool: its lane is free, and a scanner waiting
        for room may take the next batch itself."""
        with self._lock:
            self._batches -= 1
            self._space.notify_all()
        if error is not None:
            log.error("a worker failed unexpectedly", exc_info=error)

    def _work(self, batch: list[tuple[str, os.stat_result | None]]) -> None:
        with self._lock:
            self._busy += 1
        moved = nbytes = attempts = failures = 0
        durations: list[float] = []
        touched: set[str] = set()
        copies = 0
        reasons: list[str] = []
        changed: list[str] = []
        # One hand-over of events per batch, not one per file (a log line, a dashboard row and a
        # published event each): under a backlog that is most of the per-file work outside the
        # system calls. A batch of slow copies still hands over every EVENT_HOLD seconds.
        self._held.events = []
        handed = time.perf_counter()
        lane = RenameLane(self.mover, self.sources)
        try:
            for rel, st in batch:
                if self._abandon.is_set():
                    break  # the rest stay in the source, untouched, for the next run
                started = time.perf_counter()
                if started - handed >= EVENT_HOLD:
                    handed = started
                    self._hand_over()
                attempts += 1
                kind, size, path = self._move_one(rel, started, st, lane)
                copies += kind == "copied"
                if kind == "changed":
                    changed.append(rel)
                elif kind == "failed":
                    failures += 1
                    reasons.append(path)  # for a failure, the error's name
                elif kind in MOVED_KINDS:
                    moved += 1
                    nbytes += size
                    durations.append(time.perf_counter() - started)
                    if kind == "moved":
                        touched.add(path)  # for a rename, its folder below the destination
        finally:
            lane.close()
            self.metrics.record(
                moved=moved,
                nbytes=nbytes,
                attempts=attempts,
                failures=failures,
                durations=durations,
                reasons=reasons,
            )
            with self._lock:
                self._busy -= 1
                self._claimed.difference_update(rel for rel, _ in batch)
                for rel in changed:  # written to during its copy: it settles again
                    with contextlib.suppress(OSError):
                        st = self._lstat_source(rel)
                        if stat.S_ISREG(st.st_mode):
                            self._offer(rel, st, self.clock())
                self._unsynced.update(touched)
                if copies or touched:
                    self._parallel = copies > 0
                self._result.moved += moved
            self._hand_over()
            self._held.events = None
            if failures or changed or self._abandon.is_set():
                self._wake.set()  # a retry to schedule, a file to settle again, or a stop under way

    def _move_one(
        self, rel: str, started: float, st: os.stat_result | None = None, lane: RenameLane | None = None
    ) -> tuple[str, int, str]:
        """Move one file; returns (what happened, its size, and for a move the folder it is in now
        relative to the destination, for a failure the error's name)."""
        # f-strings, not os.path.join: this runs once per file; the parts are known to be clean.
        src = f"{self.source}/{rel}"
        name = rel.rpartition("/")[2]
        try:
            target = self.naming.target(name)
        except InvalidDate as exc:
            self._quarantine(rel, src, str(exc), None, attempts=0)
            return "quarantined", 0, ""
        intended = self.mover.tree.path(target.folder, name)
        try:
            if lane is not None and st is not None and lane.move(rel, target.folder, name, st):
                outcome = Outcome("moved", intended, st.st_size, target.folder)
            else:
                outcome = self.mover.move(
                    self.sources, rel, target.folder, name, self.settings.on_conflict, st
                )
        except Vanished:
            self._forget(rel)
            self.metrics.add(vanished=1)
            self._emit(ev.Vanished(src))
            return "vanished", 0, ""
        except Abandoned:
            return "abandoned", 0, ""
        except Changed:
            self._forget(rel)
            self._warn(f"{src} changed during its copy; it moves once it holds still again")
            return "changed", 0, ""
        except Conflict as exc:
            self._quarantine(rel, src, str(exc), exc.existing, attempts=self.retry.attempts(rel))
            return "quarantined", 0, ""
        except MoveError as exc:
            self._failed(rel, src, exc, intended)
            return "failed", 0, _reason(exc)
        except OSError as exc:
            error = MoveError.from_os(exc, "move")
            self._failed(rel, src, error, intended)
            return "failed", 0, _reason(error)
        self._forget(rel)
        if outcome.kind == "skipped":
            try:
                st = os.lstat(src)
                with self._lock:
                    self.readiness.skip(rel, st, self._scans)
            except OSError:
                pass
            self.metrics.add(skipped=1)
            self._emit(ev.Skipped(src, outcome.path))
        else:
            if outcome.kind in ("twin", "deduped"):
                self.metrics.add(duplicates=1)
            seconds = time.perf_counter() - started
            self._emit(ev.Moved(src, outcome.path, outcome.size, seconds, outcome.kind))
        return outcome.kind, outcome.size, outcome.folder

    def _room_for(self, size: int) -> bool:
        """Asked by the mover before a copy: a large file must not take the disk under the gate."""
        if size < LARGE_FILE:
            return True
        self.gate.check()
        return self.gate.fits(size)

    def _sync_folders(self) -> None:
        """Renames are atomic without this; it makes reported moves durable about once a second,
        one fsync per folder touched since, however many files moved into it."""
        with self._lock:
            folders, self._unsynced = self._unsynced, set()
        for folder in folders:
            with contextlib.suppress(OSError):
                self.mover.tree.sync(folder)

    def _release_folders_when_idle(self) -> None:
        """With nothing in flight, close the cached folder descriptors: an operator can then
        unmount the destination (or the quarantine) while the daemon idles."""
        with self._lock:
            idle = not self._batches and not self._ready
        if idle:
            self.mover.tree.forget()
            self.quarantine.mover.tree.forget()

    def _failed(self, rel: str, src: str, exc: MoveError, intended: str) -> None:
        message = str(exc)
        if exc.code in NO_ROOM:
            self.gate.check()
            delay = self._retry_later(rel, message, count_attempt=False)
            self._emit(ev.Retried(src, self.retry.attempts(rel), message, delay))
            return
        attempt = self.retry.attempts(rel) + 1
        if exc.transient and attempt <= self.settings.max_retries:
            delay = self._retry_later(rel, message, count_attempt=True)
            self.metrics.add(retried=1)
            self._emit(ev.Retried(src, attempt, message, delay))
            return
        self._quarantine(rel, src, message, intended, attempts=attempt)

    def _retry_later(self, rel: str, message: str, *, count_attempt: bool) -> float:
        with self._lock:
            attempt = self.retry.attempts(rel) + (1 if count_attempt else 0)
            # A wait that does not count as an attempt (no room) still backs off, by how many
            # times this file has failed so far: a disk that keeps refusing is not hammered.
            step = attempt if count_attempt else len(self.retry.errors(rel)) + 1
            delay = backoff(max(1, step), self.settings.retry_base_delay, self.settings.retry_max_delay)
            self.retry.schedule(rel, attempt, delay, message, self.clock())
        return delay

    def _quarantine(self, rel: str, src: str, reason: str, intended: str | None, attempts: int) -> None:
        with self._lock:
            errors = self.retry.errors(rel)
            first = self.retry.entries[rel].first_failed if rel in self.retry else None
        errors.append(stamped(reason, self.clock()))
        try:
            record = self.quarantine.put(
                self.sources,
                rel,
                reason=reason,
                intended=intended,
                attempts=attempts,
                errors=errors,
                first_failed_at=first,
            )
        except Vanished:
            self._forget(rel)
            self.metrics.add(vanished=1)
            return
        except (MoveError, OSError) as exc:
            # Not even the quarantine will take it: it stays in the source, tried again later.
            message = f"{reason}; and could not be quarantined: {exc}"
            with self._lock:
                self._result.failed += 1
                if self._once:
                    self.retry.forget(rel)
                    self._result.left.append(f"{src}: {message}")
                else:
                    delay = self.settings.retry_max_delay
                    self.retry.schedule(rel, attempts, delay, message, self.clock())
            self._emit(ev.Failed(src, message))
            return
        self._forget(rel)
        self.metrics.add(quarantined=1)
        with self._lock:
            self._result.quarantined += 1
        self._refresh_quarantine_stats(added=record.size)
        self._emit(ev.Quarantined(src, reason, attempts, record.id))

    def _forget(self, rel: str) -> None:
        if rel not in self.retry:  # the usual case, and only this file's worker would add it
            return
        with self._lock:
            self.retry.forget(rel)

    def _save_retry(self) -> None:
        with self._lock:
            try:
                self.retry.save()
            except OSError as exc:
                log.warning("cannot save the retry queue to %s: %s", self.retry.path, exc)

    def _refresh_quarantine_stats(self, added: int | None = None) -> None:
        if added is not None:
            with self._lock:
                q = self._quarantine_stats
                self._quarantine_stats = QuarantineStats(
                    q.count + 1, q.bytes + added, q.oldest if q.oldest is not None else self.clock()
                )
            return
        stats = self.quarantine.stats()
        with self._lock:
            self._quarantine_stats = stats

    # ---- helpers -------------------------------------------------------------------------------

    def _state_name(self) -> str:
        if self._state != "running":
            return self._state
        if self._paused:
            return "paused"
        if self.gate.closed:
            return "paused-disk"
        return "running"

    def _remote_pause(self) -> str:
        self.pause()
        return self._state_name()

    def _remote_resume(self) -> str:
        self.resume()
        return self._state_name()

    def _check_alerts(self) -> None:
        active = evaluate(self.snapshot(), self.rules)
        before, self._alerts = self._alerts, active
        for name, message in active.items():
            if name not in before:
                self._emit(ev.Alert(name, message, True))
        for name, message in before.items():
            if name not in active:
                self._emit(ev.Alert(name, f"recovered: {message}", False))

    def _publish(self) -> None:
        try:
            self.publisher.publish(self.snapshot())
        except OSError as exc:
            log.warning("cannot publish state to %s: %s", self.publisher.path, exc)

    def _warn(self, message: str) -> None:
        self._emit(ev.Warning(message))

    def _emit(self, event: ev.Event) -> None:
        held = getattr(self._held, "events", None)
        if held is not None:  # a worker in a batch: handed over with the rest of it
            held.append(event)
        else:
            self._deliver([event])

    def _deliver(self, events: list[ev.Event]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(events)
            except Exception:  # a face's bug must not stop the engine
                log.exception("event subscriber failed")

    def _hand_over(self) -> None:
        """Deliver the events this thread holds, and go on holding."""
        held = self._held.events
        if held:
            self._held.events = []
            self._deliver(held)


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _other_filesystem(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_dev != os.stat(b).st_dev
    except OSError:
        return True


def _reason(exc: MoveError) -> str:
    """A short, bounded label for metrics: the errno name, or "other"."""
    return errno.errorcode.get(exc.code, "other") if exc.code is not None else "other"
