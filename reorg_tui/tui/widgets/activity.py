"""The latest events, newest at the bottom, in the words of present.brief(): names are escaped,
so a newline cannot split a line, and paths under the destination are shown relative to it.

It follows the newest line unless the operator moved away on purpose: scrolled up, or moved the
cursor (up, page up, home, a click) off the newest line. Then its border says so (and how many
lines came since), the view stays on the lines it shows, and End or G (or f anywhere on the
overview) jumps back to the newest and follows again; so does coming back down to the end.
Textual's own Log follows only if the view was at the end just before a write, which a burst of
writes between two layout passes breaks for good: here following is a state of its own.
Enter asks for the event under the cursor in full (``Chosen``).

A filter (``show_only``) keeps the lines whose event matches: text anywhere in its whole words
(the full paths, the outcome, the whole error; any case), or a regular expression after ``re:``;
and, with errors only, the events that went wrong (a retry, a failure, a quarantine, a warning).
The pane keeps its last MAX_LINES events whatever the filter, so clearing it shows them again.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Input, Log

from reorg_tui.engine import events as ev
from reorg_tui.present import brief, describe
from reorg_tui.tui.text import clock

MAX_LINES = 1000
ERRORS = (ev.Retried, ev.Failed, ev.Quarantined, ev.Warning)


@dataclass(frozen=True)
class Filter:
    """What the pane shows: every line, or those whose event matches."""

    text: str = ""
    errors_only: bool = False

    @property
    def active(self) -> bool:
        return bool(self.text.strip()) or self.errors_only

    def matcher(self) -> re.Pattern[str] | None:
        """The text as a pattern (``re:`` a regular expression, else the text itself, any case);
        raises re.error for a bad expression."""
        text = self.text.strip()
        if not text:
            return None
        if text.startswith("re:"):
            return re.compile(text[3:], re.IGNORECASE)
        return re.compile(re.escape(text), re.IGNORECASE)


@dataclass(frozen=True)
class _Line:
    event: ev.Event
    text: str  # as shown, after its clock


class ActivityLog(Log):
    COMPONENT_CLASSES = {"activity--cursor"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False, id="activity.up"),
        Binding("down", "move(1)", "Down", show=False, id="activity.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="activity.page-up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="activity.page-down"),
        Binding("home,g", "oldest", "Oldest", show=False, id="activity.oldest"),
        Binding("end,G", "follow", "Follow", show=False, id="activity.follow"),
        Binding("enter", "choose", "Details", id="activity.details"),
    ]

    class Chosen(Message):
        """Enter on a line: show this event in full."""

        def __init__(self, event: ev.Event) -> None:
            super().__init__()
            self.event = event

    following = True
    unseen = 0  # lines added since it stopped following
    cursor = -1  # the line the operator points at (the newest while following); -1: none yet
    _own_scroll = False  # a scroll this widget makes, not the operator

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LINES, highlight=False, auto_scroll=False, **kwargs)  # type: ignore[arg-type]
        self.events: list[ev.Event] = []  # one a line shown, oldest first
        self.kept: deque[_Line] = deque(maxlen=MAX_LINES)  # the latest events, shown or filtered out
        self.filter = Filter()
        self._match: re.Pattern[str] | None = None
        self.problem: str | None = None  # a filter that cannot be used: why

    def show_only(self, wanted: Filter) -> None:
        """Show the kept lines that match ``wanted`` (all of them with an empty filter)."""
        self.filter, self.problem = wanted, None
        try:
            self._match = wanted.matcher()
        except re.error as exc:
            self._match, self.problem = re.compile(r"(?!)"), f"not a regular expression: {exc}"
        self.clear()
        self.events = []
        kept = [line for line in self.kept if self._wanted(line)]
        if kept:
            self.write_lines([line.text for line in kept])
            self.events = [line.event for line in kept]
        self.following, self.unseen = True, 0
        self._to_newest()
        self._show_state()

    def _wanted(self, line: _Line) -> bool:
        if self.filter.errors_only and not isinstance(line.event, ERRORS):
            return False
        if self._match is None:
            return True
        # The line as shown, and the event's whole words: full paths, the whole error.
        return self._match.search(f"{line.text}\n{describe(line.event)}") is not None

    def add(self, events: Iterable[ev.Event], dest: str = "") -> None:
        shown, lines = [], []
        filtering = self.filter.active
        for event in list(events)[-MAX_LINES:]:  # under a flood, only what the log can keep
            text = brief(event, dest)
            if text is None:
                continue
            line = f"{clock(event.at)} {text}"
            kept = _Line(event, line)
            self.kept.append(kept)
            if filtering and not self._wanted(kept):
                continue
            shown.append(event)
            lines.append(line)
        if not lines:
            return
        before = len(self.lines)
        self.write_lines(lines[-MAX_LINES:])
        self.events.extend(shown[-MAX_LINES:])
        # The oldest lines made room (as many from both lists: no line holds a line break).
        dropped = before + len(lines[-MAX_LINES:]) - len(self.lines)
        excess = len(self.events) - len(self.lines)
        if excess > 0:
            del self.events[:excess]
        if self.following:
            self._to_newest()
            return
        # Not following: the view and the cursor move up as many lines, to stay on what they show.
        self.unseen += len(lines)
        self.cursor = max(0, self.cursor - dropped)
        self._scroll(y=max(0, round(self.scroll_y) - dropped))
        self._show_state()

    # ---- keys and the mouse ----------------------------------------------------------------------

    def action_follow(self) -> None:
        self.following, self.unseen = True, 0
        self._to_newest()
        self._show_state()

    def action_move(self, lines: int) -> None:
        self._point(max(0, self.cursor + lines))

    def action_page(self, pages: int) -> None:
        self.action_move(pages * max(1, self.scrollable_content_region.height - 1))

    def action_oldest(self) -> None:
        self._point(0)

    def action_choose(self) -> None:
        if 0 <= self.cursor < len(self.events):
            self.post_message(self.Chosen(self.events[self.cursor]))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and round(self.scroll_y) + offset.y < len(self.events):
            self._point(round(self.scroll_y) + offset.y)

    def on_resize(self) -> None:
        if self.following:
            self._to_newest()

    def on_focus(self) -> None:
        self.refresh()  # the cursor shows while the pane has the focus

    def on_blur(self) -> None:
        self.refresh()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._own_scroll:
            return
        # The operator scrolled: away from the end stops following, back to the end follows again.
        at_end = round(new) >= self.max_scroll_y
        if at_end != self.following:
            self.following, self.unseen = at_end, 0
            if at_end:
                self.cursor = len(self.events) - 1
            self._show_state()

    # ---- drawing -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.has_focus and round(self.scroll_y) + y == self.cursor:
            style = self.get_component_rich_style("activity--cursor")
            strip = Strip(Segment.apply_style(list(strip), post_style=style), strip.cell_length)
        return strip

    def _point(self, line: int) -> None:
        """The operator put the cursor on a line: on the newest it follows, else it holds there."""
        if not self.events:
            return
        if line >= len(self.events) - 1:
            self.action_follow()
            return
        self.cursor, self.following = line, False
        top, height = round(self.scroll_y), self.scrollable_content_region.height
        if line < top:
            self._scroll(y=line)
        elif line >= top + height:
            self._scroll(y=line - height + 1)
        self._show_state()

    def _to_newest(self) -> None:
        self.cursor = len(self.events) - 1
        self._scroll(end=True)

    def _scroll(self, *, end: bool = False, y: float = 0) -> None:
        self._own_scroll = True
        try:
            if end:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            else:
                self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._own_scroll = False
        self.refresh()

    def _show_state(self) -> None:
        parts = []
        if self.filter.active:
            what = "errors" if self.filter.errors_only else ""
            if self.filter.text.strip():
                what = f"{what} matching {self.filter.text.strip()!r}".strip()
            parts.append(self.problem or f"{what}: {len(self.events)} of {len(self.kept)}")
        if not self.following:
            parts.append(f"not following · {self.unseen} new · f follows")
        self.border_subtitle = " · ".join(parts)


class ActivityPane(Vertical):
    """The Activity log with its filter box above it (shown by ``/``): typing filters the lines
    at once; enter goes back to the lines keeping the filter; escape clears it."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="activity.filter"),
        Binding("e", "errors", "Errors only", id="activity.errors"),
        Binding("escape", "clear", "Clear filter", show=False, id="activity.clear"),
    ]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: a name, an outcome, an error; re: for a regex", id="activity-filter")
        yield ActivityLog(id="activity")

    @property
    def log_lines(self) -> ActivityLog:
        return self.query_one(ActivityLog)

    @property
    def box(self) -> Input:
        return self.query_one("#activity-filter", Input)

    def action_filter(self) -> None:
        self.box.add_class("-visible")
        self.box.focus()

    def action_errors(self) -> None:
        lines = self.log_lines
        lines.show_only(Filter(lines.filter.text, not lines.filter.errors_only))

    def action_clear(self) -> None:
        self.box.value = ""
        self.box.remove_class("-visible")
        self.log_lines.show_only(Filter())
        self.log_lines.focus()

    @on(Input.Changed, "#activity-filter")
    def _typed(self, event: Input.Changed) -> None:
        self.log_lines.show_only(Filter(event.value, self.log_lines.filter.errors_only))

    @on(Input.Submitted, "#activity-filter")
    def _submitted(self) -> None:
        if not self.box.value.strip():
            self.box.remove_class("-visible")
        self.log_lines.focus()
