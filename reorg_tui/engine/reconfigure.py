"""Settings changed while the engine runs (a reload: SIGHUP, or ``reorg-tui reload``).

Some settings can change live and take effect at the next use: how many batches run at once, the
retries and their delays, the settle time, the poll interval, the ignore globs, the alert
thresholds, the free-space minimum. The others name what the engine holds open or how it names
files (the four folders, the layout and the pattern, the conflict policy, ...): those are refused,
and the value in use is kept. The retry queue, the moves in flight and every alert's state are
kept whatever changes (an alert already raised is not raised again).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from reorg_tui.engine.settings import EngineSettings

LIVE = frozenset(
    {
        "workers",
        "max_retries",
        "retry_base_delay",
        "retry_max_delay",
        "settle",
        "poll_interval",
        "ignore",
        "min_free_percent",
        "alert_error_rate",
        "alert_quarantine_count",
        "alert_quarantine_age",
        "alert_disk_free_percent",
        "alert_pending_age",
        "history_days",
        "shutdown_timeout",
    }
)


@dataclass(frozen=True)
class Change:
    name: str
    before: object
    after: object

    def __str__(self) -> str:
        return f"{self.name.replace('_', '-')} {shown(self.before)} -> {shown(self.after)}"


@dataclass(frozen=True)
class Reconfigured:
    """What a reload changed, and what it could not (kept as it was)."""

    changed: tuple[Change, ...] = ()
    refused: tuple[Change, ...] = ()


def differences(
    old: EngineSettings, new: EngineSettings, names: frozenset[str] | None = None
) -> list[Change]:
    """The engine's settings (or ``names`` of them) that differ between ``old`` and ``new``."""
    out = []
    for f in fields(EngineSettings):
        if names is not None and f.name not in names:
            continue
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after:
            out.append(Change(f.name, before, after))
    return out


def split(old: EngineSettings, new: EngineSettings) -> Reconfigured:
    found = differences(old, new)
    return Reconfigured(
        tuple(c for c in found if c.name in LIVE), tuple(c for c in found if c.name not in LIVE)
    )


def shown(value: object) -> str:
    """A setting's value in a log line."""
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)
