"""Alert rules over a snapshot: which sentences an operator sees, and when none."""

from __future__ import annotations

import dataclasses

from reorg_tui.engine.alerts import AlertRules, evaluate
from reorg_tui.engine.metrics import Disk, Pending, QuarantineInfo
from reorg_tui.tui.sample import NOW, snapshot

RULES = AlertRules(error_rate=0.05, quarantine_count=5, quarantine_age=3600, disk_free_percent=15)


def quiet():
    return dataclasses.replace(snapshot(), error_rate=0.0, quarantine=QuarantineInfo(), waiting=())


def test_a_quiet_engine_raises_nothing():
    assert evaluate(quiet(), RULES) == {}


def test_each_rule_speaks_when_crossed():
    snap = dataclasses.replace(
        quiet(),
        error_rate=0.2,
        quarantine=QuarantineInfo(count=7, bytes=10, oldest=NOW - 7200),
        disk=Disk(free_bytes=10, total_bytes=100, free_percent=10.0, min_free_percent=5),
        waiting=(Pending("2024-01-01_writing.log", "settling", NOW - 5400, "still for 0s"),),
    )
    active = evaluate(snap, RULES)
    assert active == {
        "error_rate": "error rate 20.0% over 60s is at or above 5.0%",
        "quarantine_count": "7 files in quarantine (alert at 5)",
        "quarantine_age": "a file has waited 2.0 h in quarantine",
        "disk_free": "destination has 10.0% free (alert under 15%)",
        "pending_age": (
            "a file has waited 1.5 h in the source (settling): 2024-01-01_writing.log (alert at 1.0 h)"
        ),
    }


def test_a_rate_needs_enough_attempts_and_zero_turns_a_rule_off():
    few = dataclasses.replace(quiet(), error_rate=1.0, history=((0, 0, 1, 1),) * 2)
    assert "error_rate" not in evaluate(few, RULES)
    off = AlertRules(error_rate=0, quarantine_count=0, quarantine_age=0, disk_free_percent=0, pending_age=0)
    loud = dataclasses.replace(snapshot(), error_rate=1.0, quarantine=QuarantineInfo(99, 1, NOW - 10**6))
    assert evaluate(loud, off) == {}
