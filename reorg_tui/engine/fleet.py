"""The fleet: several daemons on one shared source, coordinated by PostgreSQL (``--coordinator``).

One instance at a time is the lister: it holds the source's session advisory lock, lists and
settles as a single host does, and publishes each file that settled to the shared queue (ON
CONFLICT DO NOTHING: a file listed again is the same row). The others try the lock each poll
interval, so when the lister dies (its session, and the lock, go with it) another lists within
one poll interval. Every instance, the lister too, claims batches from the queue (SKIP LOCKED,
from its own point in the folder order), moves them with the one transfer protocol, and records
each outcome only where its claim's fence still matches. Before a batch moves, its claims are
confirmed (fence unchanged, lease renewed): no file moves without a live claim. An instance that
stalled past its lease (SIGSTOP, a VM pause) finds, when it wakes, that its claims are gone; what
it still moves finds the no-replace publish, or the source already gone; and what it records
changes no row.

After an error (a file gone from the source, a publish that failed), both names are looked at
before deciding: on NFS a rename whose reply was lost is retransmitted and reports an error
although the first one succeeded, so a file at its target with the listed inode and size is
done, whoever moved it.

The coordinator down: nothing is claimed (intake pauses: ``down`` says why, the snapshot and the
log say so), outcomes not yet recorded wait in memory, and everything resumes by itself once it
answers (tried once a second).

Owns, under its own lock: ``_claims`` (rel -> Claim: what this instance holds), ``_offered``
(settled files to publish), ``_published`` (what this lister published, so a rescan does not
write them again), ``_unrecorded`` (outcomes the coordinator did not take yet) and the counts.

Threads: the scanner calls ``lists`` (and ``offer``, under intake's lock: the order is intake,
then this, never the reverse); the coordinator calls ``round``; batch threads ``confirm`` and
``finish``; the housekeeper ``tick``; any thread ``view``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from reorg_tui.engine import events as ev
from reorg_tui.engine import steps
from reorg_tui.engine.kinds import ARRIVED, Kind, Ready, State
from reorg_tui.engine.ledger import new_owner
from reorg_tui.engine.ledger_pg import Claim, CoordinatorDown, FileState, Finished, PgLedger, signed_ino
from reorg_tui.engine.metrics import FleetView
from reorg_tui.engine.naming import InvalidDate, numbered
from reorg_tui.engine.plan import plan

if TYPE_CHECKING:
    from reorg_tui.engine.batch import BatchResult
    from reorg_tui.engine.bus import EventBus
    from reorg_tui.engine.intake import Intake
    from reorg_tui.engine.metrics import Snapshot
    from reorg_tui.engine.settings import EngineSettings

log = logging.getLogger(__name__)
PUBLISH_CHUNK = 2000  # files a statement when the lister publishes
PUBLISHED_MAX = 200_000  # names this lister remembers having published (then it forgets them all)
AGREED = ("layout", "pattern", "on_conflict")  # settings every instance of a fleet must share
COLLISION_NAMES_LOOKED_AT = 100  # a gone file is looked for at its name and these collision names


class Fleet:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        intake: Intake,
        bus: EventBus,
        snapshot: Callable[[], Snapshot],
        forget: Callable[[str], None],
        retrying: Callable[[str], bool],
        wake: threading.Event,
    ) -> None:
        self.settings = settings
        self.source = str(settings.source)
        self.dest = str(settings.dest)
        self.naming = settings.naming()  # (layout and pattern never change live: see reconfigure.py)
        self.intake = intake
        self.bus = bus
        self.snapshot = snapshot
        self._forget = forget  # a retry of this instance that it no longer has a claim for
        self._retrying = retrying  # whether a failed file waits for a retry here
        self._wake = wake  # the coordinator's: a round at once (more to claim, or to publish)
        self._more = False  # the last claim was full: the queue likely holds more
        self.pg = PgLedger(settings.coordinator, owner=new_owner(), identity=self.source)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._start = random.randrange(1 << 31)  # this instance's point in the folder order
        self._lock = threading.Lock()
        self._claims: dict[str, Claim] = {}
        self._offered: list[tuple[str, os.stat_result]] = []
        self._published: dict[str, tuple[int, int, int, int]] = {}
        self._unrecorded: list[Finished] = []
        self.down: str | None = None
        self._down_since: float | None = None
        self.lister = False
        self.late = 0

    @property
    def lease(self) -> float:
        return self.settings.claim_lease

    # ---- start and end -------------------------------------------------------------------------

    def open(self, stop: threading.Event) -> None:
        """Connect and check the fleet's settings, trying once a second until the coordinator
        answers (or ``stop``): an instance started while the database is down waits for it."""
        agreed = {name: str(getattr(self.settings, name)) for name in AGREED}
        said = False
        while True:
            try:
                self.pg.open(agreed)
                break
            except CoordinatorDown as exc:
                if not said:
                    log.warning("coordinator %s not reachable (%s): waiting for it", self.pg.where, exc)
                    said = True
                if stop.wait(1.0):
                    return
        log.info("joined the fleet on %s (coordinator %s)", self.source, self.pg.where)

    def close(self) -> None:
        """Hand back every claim held (ready again, for the others at once), then disconnect."""
        with self._lock:
            back = [Finished(c.id, c.fence, FileState.READY) for c in self._claims.values()]
            self._claims.clear()
            pending, self._unrecorded = self._unrecorded + back, []
        try:
            self.pg.finish(pending)
            final = dataclasses.replace(self.snapshot(), state=State.STOPPED)
            self.pg.seen(self.host, self.pid, final.to_dict())  # `status`: it stopped, it did not die
        except CoordinatorDown:
            pass  # their leases lapse: the others take them then
        self.pg.close()

    # ---- the lister ----------------------------------------------------------------------------

    def lists(self) -> bool:
        was, self.lister = self.lister, self.pg.lister(stale_after=max(self.lease, 3.0))
        if self.pg.ended_lister is not None:
            owner, silent = self.pg.ended_lister
            self.pg.ended_lister = None
            log.warning(
                "the lister %s had not been heard of for %.0fs (stalled): its coordinator session "
                "was ended, and this instance takes over the listing",
                owner,
                silent,
            )
        if self.lister != was:
            if self.lister:
                log.info("this instance lists %s for the fleet now", self.source)
            else:
                log.warning("this instance no longer lists %s (its coordinator session ended)", self.source)
        return self.lister

    def offer(self, rel: str, st: os.stat_result) -> bool:
        identity = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._published.get(rel) != identity:
                self._offered.append((rel, st))
                if len(self._offered) % PUBLISH_CHUNK == 0:
                    self._wake.set()  # a chunk to publish: at once, not at the next timeout
        return False  # never queued here: it comes back through a claim, here or elsewhere

    def _publish(self) -> None:
        with self._lock:
            offered, self._offered = self._offered, []
        for at in range(0, len(offered), PUBLISH_CHUNK):
            chunk = offered[at : at + PUBLISH_CHUNK]
            self.pg.publish(chunk)  # (CoordinatorDown: the rest are offered again by the next scan)
            with self._lock:
                if len(self._published) > PUBLISHED_MAX:
                    self._published.clear()
                for rel, st in chunk:
                    self._published[rel] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    # ---- the coordinator's round ---------------------------------------------------------------

    def round(self, may_claim: bool) -> None:
        """Publish what settled; then claim while fewer than two batches wait or move here (a
        claim kept for a retry waiting its turn does not count: it holds up no new work)."""
        try:
            if self._offered:
                self._publish()
                self._came_back()
            if self.down:
                return  # (while it is down, the heartbeat is what tries it again: tick)
            if not may_claim:
                self._hand_back()
                return
            want = 2 * self.settings.batch_size
            while sum(self.intake.counts()[1:]) < want:
                claims = self.pg.claim(self.settings.batch_size, self._start, self.lease)
                self._more = len(claims) == self.settings.batch_size
                if not claims:
                    break
                with self._lock:
                    for c in claims:
                        self._claims[c.rel] = c
                self.intake.accept([(c.rel, None) for c in claims])
        except CoordinatorDown as exc:
            self._went_down(str(exc))

    def _hand_back(self) -> None:
        """Paused (by an operator, for the disk): the claimed files waiting here unmoved go back
        to the queue at once, for the other instances, rather than when this one resumes."""
        if not self._claims or not self.intake.ready_count():
            return
        waiting = self.intake.take(self.intake.ready_count())
        with self._lock:
            claims = [c for c in (self._claims.get(rel) for rel, _ in waiting) if c is not None]
        for rel, _ in waiting:
            if self._retrying(rel):
                self._forget(rel)  # its retries are the next claimer's now
        self.intake.done(waiting, [])
        self._record([Finished(c.id, c.fence, FileState.READY) for c in claims])
        log.info("paused: %d claimed file(s) handed back to the fleet", len(claims))

    # ---- a batch -------------------------------------------------------------------------------

    def confirm(self, batch: list[Ready]) -> list[Ready]:
        with self._lock:
            held = [(rel, self._claims.get(rel)) for rel, _ in batch]
        claims = [c for _, c in held if c is not None]
        for rel, c in held:
            if c is None:
                self._drop(rel)  # a retry of a claim this instance no longer has: not moved here
        try:
            mine = self.pg.confirm(claims, self.lease)
        except CoordinatorDown as exc:
            self._went_down(str(exc))
            mine = set()  # no move without a claim: the batch waits in the source
        moving: list[Ready] = []
        found: list[Finished] = []
        for claim in claims:
            if claim.id not in mine:
                self._drop(claim.rel)  # another instance has it now (or will, when its lease lapses)
                continue
            try:
                st = os.lstat(f"{self.source}/{claim.rel}")
            except OSError:
                found.append(self._gone(claim))
                continue
            if not claim.matches(st):
                found.append(Finished(claim.id, claim.fence, FileState.CHANGED))  # listed anew
                continue
            moving.append((claim.rel, st))
        if found:
            self._record(found)
        if steps.armed:
            steps.reached("claimed")
        return moving

    def finish(self, result: BatchResult, moving: list[Ready]) -> None:
        if steps.armed:
            steps.reached("outcomes")
        with self._lock:
            claims = dict(self._claims)
        outcomes: list[Finished] = []
        tried = set()
        for file in result.files:
            tried.add(file.rel)
            claim = claims.get(file.rel)
            if claim is None:
                continue
            outcome = self._outcome(claim, file.kind, file.reason)
            if outcome is not None:
                outcomes.append(outcome)
        for rel, _ in moving:  # a stop came first: untouched, ready for anyone
            claim = claims.get(rel)
            if rel not in tried and claim is not None:
                outcomes.append(Finished(claim.id, claim.fence, FileState.READY))
        self._record(outcomes)

    def _outcome(self, claim: Claim, kind: Kind, reason: str | None) -> Finished | None:
        """A row's outcome from a file's result; None while it stays this instance's (a retry)."""
        if kind in ARRIVED:
            return Finished(claim.id, claim.fence, FileState.DONE, self._target(claim.rel))
        if kind is Kind.VANISHED:
            return self._gone(claim)
        if kind is Kind.QUARANTINED:
            return Finished(claim.id, claim.fence, FileState.QUARANTINED, error=reason)
        if kind is Kind.SKIPPED:
            return Finished(claim.id, claim.fence, FileState.SKIPPED)
        if kind is Kind.CHANGED:
            return Finished(claim.id, claim.fence, FileState.CHANGED)
        if kind is Kind.ABANDONED:
            return Finished(claim.id, claim.fence, FileState.READY)
        if kind in (Kind.FAILED, Kind.WAITING) and self._retrying(claim.rel):
            return None  # retried here, under the same claim (its heartbeat keeps it)
        return Finished(claim.id, claim.fence, FileState.LEFT, error=reason)

    def _gone(self, claim: Claim) -> Finished:
        """Not at its source name: at its target with the listed inode and size, it is done
        (another instance whose outcome came too late, a rename that reported an error although
        it happened), under its own name or a collision name (``name (1).ext``: its name was
        taken); otherwise someone else took it."""
        target = self._target(claim.rel)
        if target is not None:
            folder, _, name = target.rpartition("/")
            for n in range(COLLISION_NAMES_LOOKED_AT):
                path = target if n == 0 else f"{folder}/{numbered(name, n)}"
                try:
                    st = os.lstat(path)
                except OSError:
                    break  # the mover takes the first free one: none further on
                if claim.ino == signed_ino(st.st_ino) and claim.size == st.st_size:
                    return Finished(claim.id, claim.fence, FileState.DONE, path)
        return Finished(claim.id, claim.fence, FileState.VANISHED)

    def _target(self, rel: str) -> str | None:
        try:
            return plan(self.naming, self.dest, rel)[2]
        except InvalidDate:
            return None

    def _record(self, outcomes: list[Finished]) -> None:
        """Record outcomes under their fences; the claims they end are this instance's no more."""
        with self._lock:
            if not outcomes and not self._unrecorded:
                return
            ended = {o.id for o in outcomes}
            for rel in [rel for rel, c in self._claims.items() if c.id in ended]:
                del self._claims[rel]
            pending, self._unrecorded = self._unrecorded + outcomes, []
        try:
            recorded = self.pg.finish(pending)
        except CoordinatorDown as exc:
            with self._lock:
                self._unrecorded = pending + self._unrecorded
            self._went_down(str(exc))
            return
        if self._more:
            self._wake.set()  # the next claim now, not at the coordinator's next timeout
        late = len(pending) - recorded
        if late:
            with self._lock:
                self.late += late
            log.warning(
                "%d outcome(s) came after this instance's claim had lapsed (it stalled past its "
                "%gs lease): not recorded; the instance that took them over records them",
                late,
                self.lease,
            )
        self._came_back()

    def _drop(self, rel: str) -> None:
        with self._lock:
            self._claims.pop(rel, None)
        if self._retrying(rel):
            self._forget(rel)  # its retry here ends: the instance holding it now decides

    # ---- once a second -------------------------------------------------------------------------

    def tick(self) -> None:
        """The heartbeat (this instance's claims renewed), claims that lapsed made ready again,
        outcomes not yet recorded, and this instance's snapshot for ``status --coordinator``."""
        if self._unrecorded:
            self._record([])  # first: before a lease that lapsed meanwhile is expired below
        with self._lock:
            ids = [c.id for c in self._claims.values()]
        try:
            if self.lister:
                self.pg.lister_alive()
            self.pg.renew(ids, self.lease)
            self.pg.expire()
            self.pg.seen(self.host, self.pid, self.snapshot().to_dict())
        except CoordinatorDown as exc:
            self._went_down(str(exc))
            return
        self._came_back()

    def _went_down(self, why: str) -> None:
        if self.down is None:
            self._down_since = time.time()
            self.down = f"coordinator {self.pg.where} not reachable: {why}"
            self.bus.emit(ev.Paused(self.down))

    def _came_back(self) -> None:
        if self.down is not None:
            self.down = None
            self._down_since = None
            self.bus.emit(ev.Resumed(f"coordinator {self.pg.where} reachable again"))

    def view(self) -> FleetView:
        return FleetView(
            coordinator=self.pg.where,
            lister=self.lister,
            connected=self.down is None,
            claimed=len(self._claims),
            late=self.late,
            down_since=self._down_since,
        )
