"""Alert rules over the snapshot: an alert is raised once when crossed and cleared once when not."""

from __future__ import annotations

from dataclasses import dataclass

from reorg_tui.engine.events import Alert
from reorg_tui.engine.metrics import ERROR_WINDOW, Snapshot
from reorg_tui.names import safe

MIN_ATTEMPTS_FOR_RATE = 5  # one failure out of one attempt is not yet an error *rate*
# The names evaluate() gives.
RULES = ("error_rate", "quarantine_count", "quarantine_age", "disk_free", "pending_age")


@dataclass(frozen=True)
class AlertRules:
    error_rate: float = 0.05  # Snapshot.error_rate (see Totals.attempts); 0 turns it off
    quarantine_count: int = 10  # files in quarantine; 0 turns it off
    quarantine_age: float = 86_400.0  # seconds the oldest quarantined file may wait; 0 turns it off
    disk_free_percent: float = 15.0  # free space on the destination; 0 turns it off
    pending_age: float = 3600.0  # seconds a file may wait in the source (settling, retried); 0: off


def evaluate(snap: Snapshot, rules: AlertRules) -> dict[str, str]:
    """Active alerts: name -> a sentence an operator can act on."""
    active: dict[str, str] = {}
    attempts = sum(h[2] for h in snap.history[-ERROR_WINDOW:])
    if rules.error_rate and attempts >= MIN_ATTEMPTS_FOR_RATE and snap.error_rate >= rules.error_rate:
        active["error_rate"] = (
            f"error rate {snap.error_rate:.1%} over {ERROR_WINDOW}s is at or above {rules.error_rate:.1%}"
        )
    q = snap.quarantine
    if rules.quarantine_count and q.count >= rules.quarantine_count:
        active["quarantine_count"] = f"{q.count} files in quarantine (alert at {rules.quarantine_count})"
    if rules.quarantine_age and q.oldest is not None and snap.taken_at - q.oldest >= rules.quarantine_age:
        hours = (snap.taken_at - q.oldest) / 3600
        active["quarantine_age"] = f"a file has waited {hours:.1f} h in quarantine"
    d = snap.disk
    if rules.disk_free_percent and d.total_bytes and d.free_percent < rules.disk_free_percent:
        active["disk_free"] = (
            f"destination has {d.free_percent:.1f}% free (alert under {rules.disk_free_percent:g}%)"
        )
    if rules.pending_age and snap.waiting and snap.oldest_pending_age >= rules.pending_age:
        oldest = snap.waiting[0]
        active["pending_age"] = (
            f"a file has waited {span(snap.oldest_pending_age)} in the source ({oldest.why}): "
            f"{safe(oldest.path)} (alert at {span(rules.pending_age)})"
        )
    return active


def span(seconds: float) -> str:
    """A duration as an alert or a summary says it: 40 s, 12 min, 1.5 h."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


class AlertTracker:
    """The alerts active now, and the events for those raised and cleared since the last look.

    Threads: the housekeeper calls ``update``; any thread reads ``current`` (rule name -> its
    sentence: a dict replaced whole, never changed in place).
    """

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        self.current: dict[str, str] = {}

    def update(self, snap: Snapshot) -> list[Alert]:
        now = evaluate(snap, self.rules)
        before, self.current = self.current, now
        raised = [Alert(name, message, True) for name, message in now.items() if name not in before]
        cleared = [
            Alert(name, f"recovered: {message}", False) for name, message in before.items() if name not in now
        ]
        return raised + cleared
