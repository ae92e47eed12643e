"""``reorg-tui status --coordinator URL``: every instance of a fleet, from the snapshots they
write to the coordinator once a second, and the worst of their health as the exit code.

Each instance is judged as ``status`` judges one on this host (status.judge), by the age of its
last snapshot on the database's clock (no host's clock is compared with another's); one that
stopped cleanly (SIGTERM: its last snapshot says so) is listed and counts for nothing. On top:
running instances but none listing is "the lister is missing" (down: nothing new is listed).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any

from reorg_tui.engine import Snapshot, State
from reorg_tui.engine.fields import BadState
from reorg_tui.engine.ledger_pg import CoordinatorDown, InstanceRow, PgLedger
from reorg_tui.engine.store import pid_alive
from reorg_tui.status import DEGRADED, DOWN, HEALTHY, START_TIMEOUT, judge

LABELS = ("healthy", "degraded", "down")
# Seconds: an instance not seen for this long is no longer listed (a restart is a new instance).
FORGET_AFTER = 600.0


@dataclass(frozen=True)
class Member:
    """One instance as the fleet's status shows it."""

    host: str
    pid: int
    state: str
    lister: bool
    files_per_second: float
    seen_ago: float
    code: int
    line: str
    moved: int = 0
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)  # as it last wrote it

    @property
    def key(self) -> str:
        """The instance among every source's: what the dashboard's Fleet rows are keyed by."""
        return f"{self.host}\0{self.pid}"

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.__dict__.items() if k != "snapshot"}
        return {**fields, "status": LABELS[self.code]}


@dataclass(frozen=True)
class FleetHealth:
    code: int
    line: str
    members: dict[str, list[Member]] = field(default_factory=dict)  # by source

    def member(self, key: str) -> Member | None:
        return next((m for ms in self.members.values() for m in ms if m.key == key), None)

    def totals(self) -> tuple[int, int, float]:
        """(instances running, files moved, files/s over the last minute) of the fleet."""
        running = [m for ms in self.members.values() for m in ms if m.state != State.STOPPED]
        every = [m for ms in self.members.values() for m in ms]
        return len(running), sum(m.moved for m in every), sum(m.files_per_second for m in running)

    def lines(self) -> list[str]:
        out = [self.line]
        for source, members in self.members.items():
            out.append(f"{source}:")
            for m in members:
                role = "lister" if m.lister else "-"
                out.append(
                    f"  {m.host} pid {m.pid}  {m.state}  {role}  {m.files_per_second:.1f} files/s  "
                    f"seen {m.seen_ago:.0f}s ago  {LABELS[m.code]}: {m.line}"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": LABELS[self.code],
            "exit_code": self.code,
            "message": self.line,
            "sources": {s: [m.to_dict() for m in ms] for s, ms in self.members.items()},
        }


def check_fleet(url: str, source: str | None, start_timeout: float = START_TIMEOUT) -> FleetHealth:
    """The fleet's health (the sources of ``source`` only, if given). A coordinator that does
    not answer is down (exit 2), said without its URL."""
    ledger = PgLedger(url, owner="status", identity=source or "")
    try:
        found = ledger.instances(within=FORGET_AFTER)
    except CoordinatorDown as exc:
        return FleetHealth(DOWN, f"down: the coordinator does not answer: {exc}")
    finally:
        ledger.close()
    if not found:
        where = f" on {source}" if source else ""
        return FleetHealth(
            DOWN, f"not running: no instance{where} has written to {ledger.where} for {FORGET_AFTER:.0f}s"
        )
    members = {s: [_member(row, start_timeout) for row in rows] for s, rows in found.items()}
    problems: list[tuple[int, str]] = []
    for s, ms in members.items():
        running = [m for m in ms if m.state != State.STOPPED]
        for m in running:
            if m.code != HEALTHY:
                problems.append((m.code, f"{m.host} pid {m.pid} {LABELS[m.code]}"))
        live = [m for m in running if m.code != DOWN]
        if live and not any(m.lister for m in live):
            problems.append((DOWN, f"the lister of {s} is missing"))
        if not live:
            problems.append((DOWN, f"no instance runs on {s}"))
    count = sum(len(ms) for ms in members.values())
    if not problems:
        return FleetHealth(HEALTHY, f"healthy: {count} instance(s) of the fleet", members)
    worst = max(code for code, _ in problems)
    return FleetHealth(worst, f"{LABELS[worst]}: " + "; ".join(p for _, p in problems), members)


def _member(row: InstanceRow, start_timeout: float) -> Member:
    try:
        snap = Snapshot.from_dict(row.snapshot)
    except (BadState, TypeError, ValueError) as exc:
        return Member(row.host, row.pid, "unknown", False, 0.0, row.seen_ago, DOWN, f"unreadable: {exc}")
    # Its process is checked only on this host; elsewhere its snapshot's age says it all.
    alive = pid_alive(row.pid) if row.host == socket.gethostname() else True
    now = time.time()
    health = judge(snap, row.pid, row.seen_ago, now, start_timeout, alive=alive)
    code, line = health.code, health.line
    if snap.state == State.STOPPED and not snap.failure:
        code, line = HEALTHY, "stopped cleanly"
    lister = bool(snap.fleet and snap.fleet.lister) and code != DOWN
    rate = float(snap.files_per_second.get(60, 0.0))
    return Member(
        row.host, row.pid, str(snap.state), lister, rate, row.seen_ago, code, line, snap.totals.moved, snap
    )


__all__ = ["DEGRADED", "FleetHealth", "check_fleet"]
