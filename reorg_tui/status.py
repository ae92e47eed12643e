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

A shard (``--shard K/N``) is checked as above, and so is every other shard of N, in the state
folders beside its own (``shard-J-of-N``), or where it said it keeps its state (its pointer in
the default folder: a shard started with a --state-dir of its own): one that is not running
(down, for any of the reasons above) makes the answer at least degraded, and is named. There is
no failover: its files wait until it runs again. Without --shard, on a source that shards of N
hold, every shard is checked.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import humanize

from reorg_tui.engine import LogHealth, Snapshot, State
from reorg_tui.engine.locate import default_state_dir, find_state_dir
from reorg_tui.engine.lock import lock_holder
from reorg_tui.engine.publish import Unpublished, read_published
from reorg_tui.engine.roots import first_replaced
from reorg_tui.engine.shard import Shard
from reorg_tui.engine.shard_lock import running_shards
from reorg_tui.engine.statedir import UntrustedStateDir, check_for_reading
from reorg_tui.engine.store import pid_alive
from reorg_tui.present import summary

HEALTHY, DEGRADED, DOWN = 0, 1, 2
STALE_AFTER = 10.0  # seconds without a new publication (it publishes about every second)
# A start-up still going after this long is down (--start-timeout): 50,000 quarantined files
# take 3 to 20 s to check, from a warm or a cold cache; an outage must not hide behind "starting".
START_TIMEOUT = 300.0
SHARDS_NAMED = 8  # a line names this many shards not running, then counts the rest


@dataclass(frozen=True)
class ShardHealth:
    """How one shard of a source fares, as ``status`` of any shard reports it."""

    shard: Shard
    code: int
    line: str

    def to_dict(self) -> dict[str, Any]:
        return {"shard": str(self.shard), "status": _LABELS[self.code], "message": self.line}


@dataclass(frozen=True)
class Health:
    code: int
    line: str
    snapshot: Snapshot | None
    pid: int | None
    age: float | None
    shards: tuple[ShardHealth, ...] = ()  # every shard of N, this one included (sharded only)

    @property
    def label(self) -> str:
        return _LABELS[self.code]

    def to_dict(self) -> dict[str, Any]:
        shards = {"shards": [s.to_dict() for s in self.shards]} if self.shards else {}
        return {
            "status": self.label,
            "exit_code": self.code,
            "message": self.line,
            "pid": self.pid,
            "published_seconds_ago": None if self.age is None else round(self.age, 3),
            "snapshot": self.snapshot.to_dict() if self.snapshot else None,
        } | shards


_LABELS = ("healthy", "degraded", "down")


def check(
    state_dir: Path,
    now: float | None = None,
    source: Path | None = None,
    start_timeout: float = START_TIMEOUT,
    shard: Shard | None = None,
) -> Health:
    """The health of the instance publishing in ``state_dir``. With ``source``, a down result
    while another process holds the source's lock names that process instead: it runs, but
    keeps its state elsewhere. A start-up is degraded for ``start_timeout`` seconds, then down.
    With ``shard`` (``state_dir`` is then that shard's), the other shards beside it too; without,
    on a source that shards hold, every shard, in the shard folders of ``state_dir``."""
    now = time.time() if now is None else now
    if shard is None and source is not None:
        running = running_shards(source)
        if running is not None:
            return _all_shards(state_dir, running[0], now, source, start_timeout)
    health = _one(state_dir, now, source, start_timeout, shard)
    if shard is None:
        return health
    base = state_dir.parent  # (the folder given, or the default: the shard's is below it)
    others = [_sibling(source, base, s, now, start_timeout) for s in shard.siblings()]
    shards = sorted(
        [ShardHealth(shard, health.code, health.line)]
        + [ShardHealth(s, h.code, h.line) for s, h in zip(shard.siblings(), others, strict=True)],
        key=lambda s: s.shard.k,
    )
    down = [s.shard for s in shards if s.code == DOWN and s.shard != shard]
    if not down:
        return dataclasses.replace(health, shards=tuple(shards))
    missing = _not_running(down, shard.n)
    if health.code == HEALTHY:
        line = f"degraded: {missing} (their files wait); this shard, {shard}: {health.line}"
    else:
        line = f"{health.line}; {missing}"
    return dataclasses.replace(health, code=max(health.code, DEGRADED), line=line, shards=tuple(shards))


def _all_shards(state_dir: Path, n: int, now: float, source: Path, start_timeout: float) -> Health:
    """Without --shard, on a source that shards of ``n`` hold: each of them, in the shard
    folders of ``state_dir`` (or where each said it keeps its state, for the default); exit by
    the worst, a shard not running counted as degraded while another runs."""
    shards = []
    for k in range(n):
        one = Shard(k, n)
        health = _sibling(source, state_dir, one, now, start_timeout)
        shards.append(ShardHealth(one, health.code, health.line))
    down = [s.shard for s in shards if s.code == DOWN]
    up = [s for s in shards if s.code != DOWN]
    worst = max((s.code for s in up), default=DOWN)
    code = DOWN if not up else max(worst, DEGRADED if down else HEALTHY)
    parts = [f"{len(up)} of {n} shards running"]
    if down:
        parts.append(_not_running(down, n))
    degraded = [str(s.shard) for s in up if s.code == DEGRADED]
    if degraded:
        parts.append(f"degraded: {_named(degraded)}")
    label = "" if code == HEALTHY else f"{_LABELS[code]}: "
    line = f"{label}{source} is processed by shards of {n}: " + "; ".join(parts)
    return Health(code, line, None, None, None, tuple(shards))


def _sibling(source: Path | None, base: Path, shard: Shard, now: float, start_timeout: float) -> Health:
    """Shard ``shard`` of a source: in its folder below ``base`` (or where it said it keeps its
    state, for the default), as ``find_state_dir`` finds it; if it is down there, where its
    pointer in the default folder says (a shard started with a --state-dir of its own, while
    ``base`` is its siblings')."""
    if source is None:
        return _one(base / shard.folder, now, None, start_timeout, shard)
    first = find_state_dir(source, base, shard)
    health = _one(first, now, source, start_timeout, shard)
    pointed = find_state_dir(source, None, shard)
    if health.code != DOWN or pointed == first:
        return health
    there = _one(pointed, now, source, start_timeout, shard)
    return there if there.code != DOWN else health


def _not_running(down: list[Shard], n: int) -> str:
    return f"{len(down)} of {n} shards not running: {_named([str(s) for s in down])}"


def _named(names: list[str]) -> str:
    shown = ", ".join(names[:SHARDS_NAMED])
    return shown if len(names) <= SHARDS_NAMED else f"{shown} and {len(names) - SHARDS_NAMED} more"


def _one(
    state_dir: Path, now: float, source: Path | None, start_timeout: float, shard: Shard | None
) -> Health:
    """One instance (or shard): its state folder trusted, then what it published."""
    try:
        check_for_reading(state_dir, source)
    except UntrustedStateDir as exc:
        return Health(DOWN, f"untrusted: {exc}; its snapshot is not believed", None, None, None)
    health = _check(state_dir, now, start_timeout, shard)
    if health.code != DOWN or source is None:
        return health
    # Who holds what this instance would: the source, or this shard's own lock (lock.py).
    held = source if shard is None else default_state_dir(source) / f"{shard.folder}.lock"
    holder = lock_holder(held)
    if holder is None or holder == health.pid:
        return health
    line = (
        f"not reachable: pid {holder} holds {source} but publishes no state in {state_dir}; "
        "it was started with another --state-dir (or a --config that sets one): pass the same"
    )
    return Health(DOWN, line, None, holder, None)


def _check(state_dir: Path, now: float, start_timeout: float, shard: Shard | None = None) -> Health:
    published = read_published(state_dir)
    if isinstance(published, Unpublished):
        line = published.why if published.missing else f"unknown: {published.why}"
        return Health(DOWN, f"not running: {line}" if published.missing else line, None, None, None)
    snap, pid = published.snapshot, published.pid
    if published.shard != shard:
        said = "no shard" if published.shard is None else f"shard {published.shard}"
        line = (
            f"unknown: {state_dir} holds the state of {said}, not of {shard or 'an instance without --shard'}"
        )
        return Health(DOWN, line, None, None, None)
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
