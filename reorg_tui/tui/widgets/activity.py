"""The latest events, newest at the bottom, in the words of present.brief(): names are escaped,
so a newline cannot split a line.

It follows the newest line unless the operator scrolled up on purpose. Then its border says so
(and how many lines came since), the view stays on the lines it shows, and End or G (or f
anywhere on the overview) jumps back to the newest and follows again; so does scrolling down to
the end. Textual's own Log follows only if the view was at the end just before a write, which a
burst of writes between two layout passes breaks for good: here following is a state of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.widgets import Log

from reorg_tui.engine import events as ev
from reorg_tui.present import brief
from reorg_tui.tui.text import clock

MAX_LINES = 1000


class ActivityLog(Log):
    BINDINGS = [
        Binding("end,G", "follow", "Follow", show=False, id="activity.follow"),
        Binding("home,g", "scroll_home", "Oldest", show=False, id="activity.oldest"),
    ]

    following = True
    unseen = 0  # lines added since it stopped following
    _own_scroll = False  # a scroll this widget makes, not the operator

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LINES, highlight=False, auto_scroll=False, **kwargs)  # type: ignore[arg-type]

    def add(self, events: Iterable[ev.Event]) -> None:
        lines = []
        for event in list(events)[-MAX_LINES:]:  # under a flood, only what the log can keep
            text = brief(event)
            if text is not None:
                lines.append(f"{clock(event.at)} {text}")
        if not lines:
            return
        lines = lines[-MAX_LINES:]
        before = len(self.lines)
        self.write_lines(lines)
        if self.following:
            self._scroll(end=True)
            return
        # The oldest lines made room: move the view up as many, so it shows the same lines.
        dropped = before + len(lines) - len(self.lines)
        self.unseen += len(lines)
        self._scroll(y=max(0, round(self.scroll_y) - dropped))
        self._show_state()

    def action_follow(self) -> None:
        self.following, self.unseen = True, 0
        self._scroll(end=True)
        self._show_state()

    def on_resize(self) -> None:
        if self.following:
            self._scroll(end=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._own_scroll:
            return
        # The operator scrolled: away from the end stops following, back to the end follows again.
        at_end = round(new) >= self.max_scroll_y
        if at_end != self.following:
            self.following = at_end
            self.unseen = 0
            self._show_state()

    def _scroll(self, *, end: bool = False, y: float = 0) -> None:
        self._own_scroll = True
        try:
            if end:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            else:
                self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._own_scroll = False

    def _show_state(self) -> None:
        self.border_subtitle = "" if self.following else f"not following · {self.unseen} new · f follows"
