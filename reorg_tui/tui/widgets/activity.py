"""The latest events, newest at the bottom. Names are escaped: a newline cannot split a line."""

from __future__ import annotations

import os
from collections.abc import Iterable

from textual.widgets import Log

from reorg_tui.engine import events as ev
from reorg_tui.names import safe
from reorg_tui.tui.text import clock, duration

MAX_LINES = 1000


def describe(event: ev.Event) -> str | None:
    name = safe(os.path.basename(getattr(event, "source", "")))
    if isinstance(event, ev.Moved):
        extra = "" if event.how in ("moved", "copied") else f" ({event.how})"
        return f"moved       {name} → {safe(event.destination)}{extra} {duration(event.seconds)}"
    if isinstance(event, ev.Waiting):  # for room (a full or unmounted destination): not a retry
        return f"waiting     {name}, again in {event.delay:.1f}s: {safe(event.error)}"
    if isinstance(event, ev.Retried):
        return f"retry {event.attempt:<5} {name} in {event.delay:.1f}s: {safe(event.error)}"
    if isinstance(event, ev.Quarantined):
        return f"quarantined {name}: {safe(event.reason)}"
    if isinstance(event, ev.Failed):
        return f"FAILED      {name}: {safe(event.error)}"
    if isinstance(event, ev.Skipped):
        return f"skipped     {name}: {safe(event.existing)} exists"
    if isinstance(event, ev.Vanished):
        return f"vanished    {name}"
    if isinstance(event, ev.Paused | ev.Resumed):
        return f"{event.kind:<11} intake ({event.reason})"
    if isinstance(event, ev.Warning):
        return f"warning     {safe(event.message)}"
    return None


class ActivityLog(Log):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LINES, highlight=False, **kwargs)  # type: ignore[arg-type]

    def add(self, events: Iterable[ev.Event]) -> None:
        lines = []
        for event in list(events)[-MAX_LINES:]:  # under a flood, only what the log can keep
            text = describe(event)
            if text is not None:
                lines.append(f"{clock(event.at)} {text}")
        if lines:
            self.write_lines(lines[-MAX_LINES:])
