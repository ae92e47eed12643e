"""The latest events, newest at the bottom, in the words of present.brief(): names are escaped,
so a newline cannot split a line."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import Log

from reorg_tui.engine import events as ev
from reorg_tui.present import brief
from reorg_tui.tui.text import clock

MAX_LINES = 1000


class ActivityLog(Log):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LINES, highlight=False, **kwargs)  # type: ignore[arg-type]

    def add(self, events: Iterable[ev.Event]) -> None:
        lines = []
        for event in list(events)[-MAX_LINES:]:  # under a flood, only what the log can keep
            text = brief(event)
            if text is not None:
                lines.append(f"{clock(event.at)} {text}")
        if lines:
            self.write_lines(lines[-MAX_LINES:])
