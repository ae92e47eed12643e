"""Health of a running instance, from the state it publishes: for cron, monitoring and people.

Exit codes of ``reorg-tui status``: 0 healthy, 1 degraded (starting, an alert is active, intake
is paused for disk, or by an operator while files wait, the quarantine is not empty, or the log
cannot be written), 2 not running, stale (a root replaced under it included: it is then not
working on the folder its path names), starting for longer than ``start_timeout``, or its
published state unreadable (a file this version did not write: the instance's state is not
known, so it is reported down, with why).

A snapshot is believed only from a state folder that no other user could have written
(engine/statedir.py): owned by this user or root, or by the user whose process holds the source's
lock (the kernel's word, from /proc/locks, for the ``--source`` given: root checking a daemon that
runs as a service user).
Anything else is reported as ``untrusted``, exit 2: a forged "healthy" is never passed on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import humanize

from reorg_tui.engine import LogHealth, Snapshot, State
from reorg_tui.engine.lock import lock_holder
from reorg_tui.engine.publish import Unpublished, read_published
from reorg_tui.engine.roots import first_replaced
from reorg_tui.engine.statedir import UntrustedStateDir, check_for_reading
from reorg_tui.engine.store import pid_alive
from reorg_tui.present import summary

HEALTHY, DEGRADED, DOWN = 0, 1, 2
STALE_AFTER = 10.0  # seconds without a new publication (it publishes about every second)
# A start-up still going after this long is down (--start-timeout): 50,000 quarantined files
# take 3 to 20 s to check, from a warm or a cold cache; an outage must not hide behind "starting".
START_TIMEOUT = 300.0


@dataclass(frozen=True)
class Health:
    code: int
    line: str
    snapshot: Snapshot | None
    pid: int | None
    age: float | None

    @property
    def label(self) -> str:
        return ("healthy", "degraded", "down")[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.label,
            "exit_code": self.code,
            "message": self.line,
            "pid": self.pid,
            "published_seconds_ago": None if self.age is None else round(self.age, 3),
            "snapshot": self.snapshot.to_dict() if self.snapshot else None,
        }


def check(
    state_dir: Path,
    now: float | None = None,
    source: Path | None = None,
    start_timeout: float = START_TIMEOUT,
) -> Health:
    """The health of the instance publishing in ``state_dir``. With ``source``, a down result
    while another process holds the source's lock names that process instead: it runs, but
    keeps its state elsewhere. A start-up is degraded for ``start_timeout`` seconds, then down."""
    try:
        check_for_reading(state_dir, source)
    except UntrustedStateDir as exc:
        return Health(DOWN, f"untrusted: {exc}; its snapshot is not believed", None, None, None)
    health = _check(state_dir, time.time() if now is None else now, start_timeout)
    holder = None if health.code != DOWN or source is None else lock_holder(source)
    if holder is None or holder == health.pid:
        return health
    line = (
        f"not reachable: pid {holder} holds {source} but publishes no state in {state_dir}; "
        "it was started with another --state-dir (or a --config that sets one): pass the same"
    )
    return Health(DOWN, line, None, holder, None)


def _check(state_dir: Path, now: float, start_timeout: float) -> Health:
    published = read_published(state_dir)
    if isinstance(published, Unpublished):
        line = published.why if published.missing else f"unknown: {published.why}"
        return Health(DOWN, f"not running: {line}" if published.missing else line, None, None, None)
    snap, pid = published.snapshot, published.pid
    age = now - published.published_at
    return judge(snap, pid, age, now, start_timeout, alive=pid_alive(pid), roots=published.roots)


def judge(
    snap: Snapshot,
    pid: int,
    age: float,
    now: float,
    start_timeout: float,
    *,
    alive: bool,
    roots: object = None,
) -> Health:
    """The health of an instance from its snapshot, published ``age`` seconds ago (``alive``:
    its process is still there, where that can be known; a fleet's instance on another host is
    judged by its age alone)."""
    if snap.failure:
        # A thread of it died: it stops (exit code 70), or has; a supervisor starts it again.
        alive = alive and snap.state != State.STOPPED
        return Health(DOWN, f"{'failing' if alive else 'stopped'}: pid {pid}: {snap.failure}", snap, pid, age)
    if snap.state == State.STOPPED or not alive:
        return Health(DOWN, f"not running: pid {pid} stopped {age:.0f}s ago", snap, pid, age)
    if age > STALE_AFTER:
        during = f" while {snap.phase or 'starting'}" if snap.state == State.STARTING else ""
        return Health(DOWN, f"stale: pid {pid} last published {age:.0f}s ago{during}", snap, pid, age)
    replaced = first_replaced(roots)
    if replaced is not None:  # seen here even before the instance notices (it stops when it does)
        line = (
            f"not processing: pid {pid} runs, but {replaced.short}; it stops with exit code 5 when it notices"
        )
        return Health(DOWN, line, snap, pid, age)
    if snap.state == State.STARTING:
        return _starting(snap, pid, age, now, start_timeout)
    problems = list(snap.alerts)
    if snap.state in (State.PAUSED_DISK, State.PAUSED_COORDINATOR) and snap.pause_reason:
        problems.append(snap.pause_reason)
    waiting = snap.queues.settling + snap.queues.ready + snap.queues.retry
    if snap.state == State.PAUSED and waiting:
        # A forgotten pause moves nothing: a monitoring check must hear of it.
        since = "" if snap.paused_at is None else f" {humanize.naturaldelta(now - snap.paused_at)} ago"
        problems.append(f"paused by an operator{since}, {waiting} file(s) waiting")
    if snap.quarantine.count and not any("quarantine" in p for p in problems):
        problems.append(f"{snap.quarantine.count} file(s) in quarantine")
    if not snap.log.writable:
        problems.append(_log_problem(snap.log))
    if problems:
        return Health(DEGRADED, "degraded: " + "; ".join(problems), snap, pid, age)
    return Health(HEALTHY, f"healthy (pid {pid}): {summary(snap)}", snap, pid, age)


def _log_problem(log: LogHealth) -> str:
    why = log.error or f"a write has waited {log.stalled_seconds:.0f}s: nobody reads it"
    return f"the log cannot be written ({why}); {log.dropped_lines} line(s) dropped"


def _starting(snap: Snapshot, pid: int, age: float, now: float, start_timeout: float) -> Health:
    """Starting: degraded (files do not move yet) for ``start_timeout`` seconds, then down."""
    took = max(0.0, now - snap.started_at)
    doing = snap.phase or "starting"
    if took > start_timeout:
        line = (
            f"start-up stuck: pid {pid} has been starting for {took:.0f}s "
            f"(over --start-timeout {start_timeout:g}s), {doing}"
        )
        return Health(DOWN, line, snap, pid, age)
    return Health(DEGRADED, f"starting (pid {pid}, {took:.0f}s so far): {doing}", snap, pid, age)
