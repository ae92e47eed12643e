"""The Engine: wires the stages together, and is the one surface every face uses.

The stages, each owning its state and lock (their opening comments say which threads run them):
- intake.py: the scanner thread (full listings, streamed, with backpressure), the watcher's
  hints, the settle clock and the ready queue;
- coordinator.py: the loop on the caller's thread: hints, settled files and due retries into
  ready work, the disk gate, dispatch;
- lanes.py: how many batches run at once, and on which thread (scanner, coordinator or pool);
- batch.py: moves one batch, one ``FileResult`` per file; the engine applies the result here;
- failures.py: retries with backoff, the quarantine hand-off, the run's tally;
- housekeeping.py: the once-a-second chores, on a thread of their own;
- bus.py: events to subscribers, a batch at a time;
- instance.py: the source lock, the control socket and the published snapshot.
The watchdog observer (watch.py) only hints. The pool has ``workers`` threads.

One path is in at most one of these places at a time: settling, ready or in flight (claimed by
intake), waiting for a retry (failures), or remembered as skipped (intake).

Over 300 lines because the wiring is written out, one keyword per collaborator, so that what each
stage may touch is read here and nowhere else; and ``snapshot()`` gathers every stage's numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from reorg_tui.engine import events as ev
from reorg_tui.engine.alerts import AlertTracker
from reorg_tui.engine.batch import BatchResult, BatchRunner, FolderSync
from reorg_tui.engine.bus import EventBus, Subscriber
from reorg_tui.engine.coordinator import Coordinator
from reorg_tui.engine.descriptors import DescriptorBudget
from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.disk import DiskGate
from reorg_tui.engine.failures import KNOWN_REASONS, Failures, RunResult
from reorg_tui.engine.feed import feed_for
from reorg_tui.engine.housekeeping import Housekeeper
from reorg_tui.engine.instance import Instance
from reorg_tui.engine.intake import Intake
from reorg_tui.engine.journal import RenameJournal
from reorg_tui.engine.kinds import Phase, Ready, State
from reorg_tui.engine.lanes import Lanes
from reorg_tui.engine.ledger import Ledger, open_for_daemon
from reorg_tui.engine.metrics import (
    WAITING_SHOWN,
    LogHealth,
    Metrics,
    Pending,
    QuarantineInfo,
    Queues,
    Snapshot,
)
from reorg_tui.engine.move import Mover, sweep_staging
from reorg_tui.engine.other_setups import recover_other_setups
from reorg_tui.engine.quarantine import QuarantineStore, Record
from reorg_tui.engine.reconfigure import Reconfigured, split
from reorg_tui.engine.recovery import recover
from reorg_tui.engine.remote import answers, audit
from reorg_tui.engine.roots import take
from reorg_tui.engine.settings import EngineSettings
from reorg_tui.engine.steps import reached
from reorg_tui.engine.store import remove_leftovers
from reorg_tui.engine.undone import hold_undone
from reorg_tui.engine.vital import ThreadDied, Vitals
from reorg_tui.engine.watch import Watcher

log = logging.getLogger(__name__)
SHARED_STAGING_KEPT = 3600.0  # seconds: see _start
WORKERS_MAX = int(EngineSettings.__dataclass_fields__["workers"].metadata["maximum"])


class Engine:
    """The core. Knows nothing of Textual or the command line; every face reads snapshot().

    Its own state: ``_paused`` (changed under ``_pause_lock`` by any face's thread, read anywhere),
    ``_state`` (written only by the thread in ``run``), and the three signals every stage shares:
    ``_wake`` (the coordinator has work), ``_stopping`` (threads end) and ``_abandon`` (copies in
    flight stop at their next chunk)."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reloader: Callable[[], str] | None = None  # the face's, for a reload asked remotely
        self.clock = clock  # the wall clock: mtimes, records, what faces show
        self.monotonic = monotonic  # durations: how long a file has held still
        self.source = str(settings.source)
        self.dest = str(settings.dest)
        self.naming = settings.naming()
        self._abandon = threading.Event()  # in-flight copies stop at their next chunk
        self._stopping = threading.Event()
        self._halt = threading.Event()  # a root was replaced: the run ends, as if stopped
        self._wake = threading.Event()  # the coordinator has something to do
        self._pause_lock = threading.Lock()  # pause() and resume() come from any face's thread
        self._paused = False  # read without it: a bool, and moves check it again between batches
        self._paused_at: float | None = None  # when it was paused: `status` reports the pause's age
        self._state = State.STARTING
        self._log_health: Callable[[], LogHealth] = LogHealth  # the face's log: see watch_log
        self._phase: Phase | None = Phase.CLAIMING  # what start-up is doing (run's thread writes it)
        self.bus = EventBus()
        # The long-lived threads (scanner, housekeeper, control server, journal): one that dies
        # stops the run, and run() raises ThreadDied (vital.py).
        self.vitals = Vitals()
        self._run_stop: threading.Event | None = None
        self.vitals.when_one_dies(self._thread_died)
        # Both trees are reached through folder descriptors, never by re-resolving path strings:
        # a symlink planted below either root is refused, not followed.
        # One descriptor per destination folder in use (a year of date folders is 378 of them: a
        # cache smaller than the working set reopens a folder for most files), as many as the
        # open-file limit leaves room for (descriptors.py).
        self.descriptors = DescriptorBudget.of_this_process(settings.workers)
        self.sources = Tree(self.source, capacity=self.descriptors.source_folders, create_root=False)
        self.gate = DiskGate(self.dest, settings.min_free_percent)
        self.mover = Mover(
            Tree(self.dest, capacity=self.descriptors.dest_folders, made=self.gate.made_folder),
            verify=settings.verify,
            stop=self._abandon,
            space=self.gate,
        )
        self.quarantine = QuarantineStore(
            settings.quarantine, verify=settings.verify, folders=self.descriptors.quarantine_folders
        )
        self.ledger: Ledger | None = None  # opened by run() once the source is held
        self.journal = RenameJournal()  # the batches' renames, written by a thread of its own
        self._next_prune = 0.0  # when the housekeeper next forgets old finished transfers
        self.metrics = Metrics(clock, reasons=KNOWN_REASONS)
        self.alerts = AlertTracker(settings.alert_rules())
        self.unsynced = FolderSync(self.mover.tree)
        self.failures = Failures(
            settings,
            clock=clock,
            monotonic=monotonic,
            bus=self.bus,
            metrics=self.metrics,
            gate=self.gate,
            store=self.quarantine,
            sources=self.sources,
            release=self._release_folders,
        )
        self.watcher = Watcher(
            self.source,
            settings.recursive,
            on_hint=self._wake.set,
            on_scan_request=self._request_scan,
            on_warning=self.bus.warn,
        )
        self.intake = Intake(
            settings,
            naming=self.naming,
            clock=clock,
            monotonic=monotonic,
            watcher=self.watcher,
            metrics=self.metrics,
            failures=self.failures,
            wake=self._wake,
            stopping=self._stopping,
        )
        self.lanes = Lanes(
            workers=settings.workers,
            batch_size=settings.batch_size,
            intake=self.intake,
            mover=self.mover,
            work=self._move_batch,
            may_move=lambda: not (self._paused or self.gate.closed or self._halt.is_set() or self.feed.down),
            wake=self._wake,
            stopping=self._stopping,
            copies=_other_filesystem(self.source, self.dest),
        )
        self.intake.lanes = self.lanes
        self.intake.roots_ok = self._roots_ok
        # Where ready files come from: this host's listing, or a fleet's queue (feed.py).
        self.feed = feed_for(
            settings,
            intake=self.intake,
            bus=self.bus,
            snapshot=self.snapshot,
            forget=self.failures.forget,
            retrying=self.failures.__contains__,
            wake=self._wake,
        )
        self.intake.feed = self.feed
        self.runner = BatchRunner(
            settings,
            naming=self.naming,
            sources=self.sources,
            mover=self.mover,
            intake=self.intake,
            failures=self.failures,
            metrics=self.metrics,
            bus=self.bus,
            abandon=self._abandon,
            journal=self.journal,
            held=self.descriptors.held_per_lane,
        )
        self.coordinator = Coordinator(
            monotonic=monotonic,
            intake=self.intake,
            failures=self.failures,
            lanes=self.lanes,
            gate=self.gate,
            bus=self.bus,
            wake=self._wake,
            halt=self._halt,
            paused=lambda: self._paused,
            remounted=self.mover.tree.forget,
            pause_reason=lambda: self.snapshot().pause_reason,
            feed=self.feed,
        )
        self.instance = Instance(
            settings,
            bus=self.bus,
            snapshot=self.snapshot,
            handlers=answers(self),
            vitals=self.vitals,
        )

    # ---- the interface every face uses -------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        self.bus.subscribe(callback)

    def watch_log(self, health: Callable[[], LogHealth]) -> None:
        """How the face's log fares, read into every snapshot (so ``status`` and the metrics
        report a log nobody reads). Called from any thread: it must answer at once."""
        self._log_health = health

    def reload_with(self, reloader: Callable[[], str]) -> None:
        """The face's reload (it knows where the settings came from): asked over the control
        socket (``reorg-tui reload``), it returns a line saying what changed."""
        self.reloader = reloader

    def reconfigure(self, new: EngineSettings) -> Reconfigured:
        """Apply the settings of ``new`` that can change live (reconfigure.LIVE), at once and for
        every stage; refuse (keep) the others. Returns what changed and what was refused."""
        outcome = split(self.settings, new)
        if not outcome.changed:
            return outcome
        live = {c.name: c.after for c in outcome.changed}
        settings = dataclasses.replace(self.settings, **live)  # only what may change: never a root
        naming = settings.naming()
        self.settings = settings
        for stage in (self.intake, self.failures, self.runner):
            stage.settings = settings
        self.naming = self.intake.naming = self.runner.naming = naming
        self.intake.set_settle(settings.settle)
        self.lanes.workers = settings.workers
        self.alerts.rules = settings.alert_rules()  # what is active now stays active: not raised again
        self.gate.min_free_percent = settings.min_free_percent
        self._request_scan()  # the ignore globs and the settle time count from the next look
        return outcome

    def pause(self) -> None:
        with self._pause_lock:
            if self._paused:
                return
            self._paused = True
            self._paused_at = self.clock()
        self.bus.emit(ev.Paused("operator"))
        self._wake.set()

    def resume(self) -> None:
        with self._pause_lock:
            if not self._paused:
                return
            self._paused = False
            self._paused_at = None
        self.intake.notify_space()  # a scanner held up by the pause goes on moving what it lists
        self.bus.emit(ev.Resumed("operator"))
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def snapshot(self) -> Snapshot:
        view = self.metrics.read()
        buckets, time_total, reasons = self.metrics.histogram()
        settling, ready, in_flight = self.intake.counts()
        queues = Queues(settling, ready, in_flight, len(self.failures))
        state = self.state()
        qstats = self.failures.quarantine_stats
        disk, why = self.gate.shown()
        reason = {
            State.PAUSED: "paused by operator",
            State.PAUSED_DISK: why,
            State.PAUSED_COORDINATOR: self.feed.down,
        }.get(state)
        totals, files, nbytes, error_rate, timing, history = view
        alerts = self.alerts.current
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
            workers_busy=self.lanes.busy,
            totals=totals,
            files_per_second=files,
            bytes_per_second=nbytes,
            error_rate=error_rate,
            timing=timing,
            queues=queues,
            retry_head=self.failures.head(100),
            disk=disk,
            quarantine=QuarantineInfo(qstats.count, qstats.bytes, qstats.oldest),
            scans=self.intake.scans,
            last_scan_seconds=self.intake.scan_seconds,
            history=history,
            failures_by_reason=reasons,
            time_histogram=buckets,
            time_total=time_total,
            alerts=tuple(alerts.values()),
            alert_names=tuple(alerts),
            last_scan_at=self.intake.last_scan_at,
            first_move_at=self.metrics.first_move_at,
            last_move_at=self.metrics.last_move_at,
            paused_at=self._paused_at,
            waiting=self._waiting(),
            failure=None if self.vitals.death is None else str(self.vitals.death),
            log=self._log_health(),
            phase=self._phase if state == State.STARTING else None,
            fleet=self.feed.view(),
        )

    def _waiting(self) -> tuple[Pending, ...]:
        """The files waiting longest, each once (a retry handed back to intake is ready and in
        the retry queue: it shows as retrying, since its first failure)."""
        candidates = self.failures.longest(WAITING_SHOWN) + self.intake.waiting(WAITING_SHOWN)
        seen: set[str] = set()
        out = []
        for p in sorted(candidates, key=lambda p: (p.since, p.why != "retrying")):
            if p.path not in seen:
                seen.add(p.path)
                out.append(p)
        return tuple(out[:WAITING_SHOWN])

    def quarantine_list(self, *, errors: bool = True) -> list[Record]:
        """Quarantined files, oldest first; ``errors`` False: their error histories left out (a
        listing of 50,000 that shows none of them decodes none). While the engine starts, the
        index as the last run left it: the start looks at every item and puts the index right
        (a listing that did the same meanwhile would read every record twice, and hold it up)."""
        if self._state is State.STARTING:
            return self.quarantine.indexed(errors=errors)
        return self.quarantine.list(errors=errors)

    def quarantine_record(self, item_id: str) -> Record:
        """One quarantined file's whole record; QuarantineError if it is not (or no longer) there."""
        return self.quarantine.get(item_id)

    def release(self, item_id: str, *, by: str = "this process") -> str:
        """Send a quarantined file back through the pipeline, attempts reset. ``by`` names who
        asked, for the log line every release leaves (a peer's uid, over the control socket)."""
        path = self.quarantine.release(item_id, self.settings.source)
        self.failures.forget(os.path.relpath(path, self.source))
        self.failures.count_quarantine()
        self._request_scan()
        audit("released", "released %s from the quarantine to %s, asked by %s", item_id, path, by)
        return path

    def delete(self, item_id: str, *, by: str = "this process") -> Record:
        record = self.quarantine.delete(item_id)
        self.failures.count_quarantine()
        audit(
            "deleted", "deleted %s (%s) from the quarantine for good, asked by %s", item_id, record.name, by
        )
        return record

    # ---- running ---------------------------------------------------------------------------

    def run(
        self, stop: threading.Event, *, once: bool = False, started: Callable[[], object] | None = None
    ) -> RunResult:
        """Run until ``stop`` is set (or, with once, until the source is done). Drains, then
        returns. Raises AlreadyRunning if another instance holds the source, before anything else
        is touched; RootReplaced, drained first, if a root stopped being the folder it began with.
        ``started`` is called once the source is held and the stages run (a face binds its metrics
        port and says "watching" there); what it raises ends the run, drained. A thread of the
        engine that dies ends it too, drained, and then ThreadDied is raised."""
        self.failures.once = once
        self._run_stop = stop
        with self.instance:
            try:
                self._start_published(once)
                # Threads are made as batches need them, and the lanes bound how many run at once
                # (--workers, which a reload may raise): the pool's own bound is the setting's.
                pool = ThreadPoolExecutor(WORKERS_MAX, thread_name_prefix="reorg-move")
                scanner = self.vitals.thread(self.intake.scan_loop, "reorg-scan", (once,))
                scanner.start()
                keeper = Housekeeper(self._chores(), self._stopping, self.vitals)
                keeper.start()
                try:
                    if started is not None:
                        started()
                    self.instance.publish()  # running, its face's port bound: now, not in a second
                    self.coordinator.run(stop, pool, once)
                finally:
                    self._shutdown(pool, scanner, keeper)
            finally:
                self.sources.close()
                self.mover.tree.close()
                self._close_ledger()
        if self.vitals.death is not None:
            raise ThreadDied(self.vitals.death)
        if self.instance.roots.replaced is not None:
            raise self.instance.roots.replaced
        return self.failures.result

    def _thread_died(self) -> None:
        """A thread of the engine died (on that thread): the run stops, as if asked to."""
        if self._run_stop is not None:
            self._run_stop.set()
        self._wake.set()

    def _start_published(self, once: bool) -> None:
        """Start, published as it goes: "starting" at once (over a stopped predecessor's state),
        then each second with its phase, until the housekeeper takes over. A start-up over a
        large quarantine takes seconds to minutes; ``status`` must not call that an outage."""
        self._phase = Phase.LEDGER
        self.instance.publish()
        started = threading.Event()

        def herald() -> None:  # not vital: the start-up goes on (and is seen stale) without it
            while not started.wait(1.0):
                self.instance.publish()

        heralding = threading.Thread(target=herald, name="reorg-starting", daemon=True)
        heralding.start()
        try:
            self._start(once)
        except BaseException:
            self._state = State.STOPPED  # what __exit__ publishes: a start-up that failed ended
            raise
        finally:
            started.set()
            heralding.join(timeout=5.0)

    def _start(self, once: bool) -> None:
        reached("starting")  # (a crash test's stalled or stuck start-up)
        self.quarantine.ensure()
        self._open_ledger()
        assert self.ledger is not None
        self._phase = Phase.COORDINATOR
        self.feed.open(self._run_stop or threading.Event())  # a fleet's: waits for its database
        # Counted from the index at once (a query, not a listing), so that a face shows how many
        # are quarantined while the checks below look at every item (seconds, at 50,000); they
        # count again when done.
        self.failures.count_quarantine()
        trees = [self.sources, self.mover.tree, self.quarantine.mover.tree]
        self._phase = Phase.RECOVERING
        recovered = recover(self.ledger, trees)
        if recovered.acted:
            self.bus.warn(
                f"recovered from an interrupted run: finished {recovered.finished} and withdrew "
                f"{recovered.withdrawn} transfer(s) the ledger had open"
            )
        if recovered.left:
            log.info("left %d open transfer(s) of another live instance alone", recovered.left)
        others = recover_other_setups(
            self.settings.source, self.settings.state_dir, self.settings.shard, trees
        )
        if others.acted:  # (OtherSetupUnfinished, exit 3, for what it cannot finish: other_setups.py)
            self.bus.warn(
                f"finished {others.finished} and withdrew {others.withdrawn} transfer(s) that an earlier "
                f"run under another setup (another --shard, or none) left open in "
                f"{', '.join(map(str, others.folders))}"
            )
        self._prune_ledger()
        self._phase = Phase.CLEANING
        held = hold_undone(self.ledger, self.sources, self.intake)  # (undone.py: not delivered again)
        if held:
            log.info("left %d file(s) an undo put back in the source alone, until each changes", held)
        # A fleet shares its folders with other hosts, whose pids mean nothing here: a partial
        # copy written to in the last hour may be one of theirs in progress, and stays.
        kept = SHARED_STAGING_KEPT if self.settings.coordinator else 0.0
        cleaned = self.mover.recover(kept_younger=kept) + sweep_staging(self.sources, kept_younger=kept)
        self._phase = Phase.QUARANTINE
        self.quarantine.kept_younger = kept
        cleaned += self.quarantine.repair() + remove_leftovers(self.settings.state_dir)
        if cleaned:
            self.bus.warn(f"recovered from an interrupted run: removed or repaired {cleaned} leftover(s)")
        self._phase = Phase.RETRIES
        loaded = self.failures.load()
        if loaded:
            log.info("restored %d file(s) waiting for a retry", loaded)
        self._phase = Phase.COUNTING
        self.failures.count_quarantine()
        self._phase = Phase.DISK
        self.gate.check()
        self._hold_roots()
        if not once:
            self._phase = Phase.WATCHER
            self.watcher.start()
        self._state = State.RUNNING
        self._phase = None

    def _hold_roots(self) -> None:
        """Take the destination's and the quarantine's identities (the source's and the state
        folder's were taken with the lock). A destination that is a mount point is the disk gate's
        (a remount there resumes intake), and so is a quarantine below it."""
        dest_mounted = self.mover.tree.mount_point
        if not dest_mounted:
            self.instance.roots.hold(take("destination", self.dest))
        quarantine = str(self.settings.quarantine)
        if not (dest_mounted and (quarantine + "/").startswith(self.dest.rstrip("/") + "/")):
            self.instance.roots.hold(take("quarantine", quarantine))

    def _roots_ok(self) -> bool:
        """Whether every root is still the folder it began with (a stat each). The first time
        one is not, the run ends, and the batches under way stop before their next file (those
        files stay where they are): no move goes on through a descriptor of the old folder."""
        replaced = self.instance.roots.check()
        if replaced is None:
            return True
        if not self._halt.is_set():  # (said once, by the face that gets it from run)
            self._halt.set()
            self._abandon.set()
            self._wake.set()
            self.intake.scan_now.set()
        return False

    def _shutdown(self, pool: ThreadPoolExecutor, scanner: threading.Thread, keeper: Housekeeper) -> None:
        self._state = State.DRAINING
        self._stopping.set()
        self._abandon.set()  # in-flight copies stop at their next chunk; their sources stay
        self.intake.notify_space()
        self.intake.scan_now.set()
        self.watcher.stop()
        deadline = time.monotonic() + self.settings.shutdown_timeout
        pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline and self.lanes.running():
            time.sleep(0.01)
        scanner.join(timeout=max(0.0, deadline - time.monotonic()))
        keeper.join(timeout=max(0.0, deadline - time.monotonic()))
        self.intake.clear()
        self.feed.close()  # a fleet's claims not moved go back to the queue, for the others
        self.unsynced.sync()
        self.failures.save()
        self._state = State.STOPPED

    # ---- one batch, on whichever thread lanes chose ----------------------------------------------

    def _move_batch(self, batch: list[Ready]) -> None:
        """Move a batch and apply what it did, in one place; its events are handed over once."""
        result = BatchResult(batch)
        moving: list[Ready] = []
        with self.bus.holding(), self.lanes.working():
            try:
                self._roots_ok()  # (a stat a root: beside a batch's moves, nothing)
                moving = self.feed.confirm(batch)  # (a fleet's: only what it still holds a claim on)
                self.runner.run(moving, result)
            finally:
                self._apply(result)
                self.feed.finish(result, moving)

    def _apply(self, result: BatchResult) -> None:
        tally = result.tally()
        self.metrics.record(
            moved=tally.moved,
            nbytes=tally.nbytes,
            attempts=tally.attempts,
            failures=len(tally.reasons),
            durations=tally.durations,
            reasons=tally.reasons,
            arrived=(tally.first_at, tally.last_at),
        )
        self.intake.done(result.batch, tally.changed)
        self.unsynced.add(tally.renamed)
        self.lanes.moved(tally.copies, len(tally.renamed))
        self.failures.moved(tally.moved)
        if tally.reasons or tally.waits or tally.changed or self._abandon.is_set():
            self._wake.set()  # a retry to schedule, a file to settle again, or a stop under way

    # ---- helpers ---------------------------------------------------------------------------------

    def _open_ledger(self) -> None:
        """The ledger, opened once the source is held; every mover of this engine journals to it."""
        self.ledger, warning = open_for_daemon(self.settings.state_dir)
        if warning:
            self.bus.warn(warning)
        self.mover.ledger = self.ledger
        self.quarantine.mover.ledger = self.ledger
        self.quarantine.use(self.ledger)  # its index
        self.failures.use(self.ledger)  # the retry queue
        self.journal.start(self.ledger, self.vitals)

    def _prune_ledger(self) -> None:
        """Once an hour (and at start): forget finished transfers older than --history-days,
        ten thousand rows at a go, so that the ledger does not grow without end."""
        now = self.clock()
        if self.ledger is None or not self.settings.history_days or now < self._next_prune:
            return
        if self.ledger.prune(now - self.settings.history_days * 86_400) < 10_000:
            self._next_prune = now + 3600  # all gone: look again in an hour, else go on next second

    def _close_ledger(self) -> None:
        """After the run the retry queue stays in memory, and the quarantine's index is built
        from its records again if it is read (a test, a dashboard showing the end)."""
        self.journal.stop()  # what is queued is written first
        if self.ledger is not None:
            self.mover.ledger = self.quarantine.mover.ledger = None
            self.quarantine.use(None)
            self.failures.use(None)
            self.ledger.close()
            self.ledger = None

    def _chores(self) -> list[Callable[[], object]]:
        """Once a second: make recent renames durable, let go of idle folders, save the retry
        queue, evaluate alerts, publish the state, check the watcher."""
        return [
            self._roots_ok,  # first: nothing below is done for a root that is not ours now
            self.unsynced.sync,
            self._release_folders_when_idle,
            self.failures.save,
            self._raise_alerts,
            self._prune_ledger,
            self.instance.publish,
            self.feed.tick,
            self.watcher.check,
        ]

    def _raise_alerts(self) -> None:
        for alert in self.alerts.update(self.snapshot()):
            self.bus.emit(alert)

    def _release_folders_when_idle(self) -> None:
        """With nothing in flight, close the cached folder descriptors: an operator can then
        unmount the destination (or the quarantine) while the daemon idles."""
        if not self.lanes.running() and not self.intake.ready_count():
            self._release_folders()

    def _release_folders(self) -> None:
        """Close every cached folder descriptor (those lent now close when given back): when
        idle, and when the process ran out of descriptors (EMFILE), so the next try finds some."""
        self.mover.tree.forget()
        self.quarantine.mover.tree.forget()
        self.sources.forget()

    def _request_scan(self) -> None:
        self.intake.scan_now.set()

    def state(self) -> State:
        """What the engine is doing now: running, paused (by an operator or for the disk)..."""
        if self._state != State.RUNNING:
            return self._state
        if self._paused:
            return State.PAUSED
        if self.gate.closed:
            return State.PAUSED_DISK
        if self.feed.down:
            return State.PAUSED_COORDINATOR
        return State.RUNNING


def _other_filesystem(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_dev != os.stat(b).st_dev
    except OSError:
        return True
