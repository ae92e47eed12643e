"""The Waiting view: the files waiting longest in the source, and why (settling since, retried
since its first failure, waiting for room), from each snapshot; ``/`` filters as you type.

A file that waits for long is how a lost event, a wedged mount or a writer that never closes its
file shows itself; --alert-pending-age raises an alert for the oldest. The rows come from the
snapshot (WAITING_SHOWN at most), so a look costs the UI nothing beyond drawing them.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from reorg_tui.engine import Snapshot
from reorg_tui.engine.metrics import Pending
from reorg_tui.names import safe
from reorg_tui.tui.screens.details import InfoScreen
from reorg_tui.tui.text import literal
from reorg_tui.tui.widgets.keyed_table import KeyedTable
from reorg_tui.tui.widgets.repaint import show


def waited(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def matches(p: Pending, text: str) -> bool:
    needle = text.strip().lower()
    return not needle or any(needle in field.lower() for field in (p.path, p.why, p.detail))


class WaitingTable(KeyedTable):
    COLUMNS = (("file", "File"), ("why", "Why"), ("waited", "Waiting"), ("detail", "Detail"))

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.items: dict[str, Pending] = {}

    def show(self, waiting: list[Pending], now: float) -> None:
        self.items = {p.path: p for p in waiting}
        self.sync(
            {p.path: (literal(p.path), p.why, waited(now - p.since), literal(p.detail)) for p in waiting}
        )


class WaitingView(Vertical):
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="waiting.filter"),
        Binding("escape", "clear", "Clear filter", show=False, id="waiting.clear"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.last: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="filter: part of a name, settling, retrying, room, an error", id="waiting-filter"
        )
        yield Static(id="waiting-note", markup=False)
        yield WaitingTable(id="waiting-table")

    @property
    def table(self) -> WaitingTable:
        return self.query_one(WaitingTable)

    @property
    def filter_box(self) -> Input:
        return self.query_one("#waiting-filter", Input)

    def show(self, snap: Snapshot) -> None:
        """From each refresh (the UI thread): only drawing, from the snapshot given."""
        self.last = snap
        if not self.is_on_screen:
            return  # drawn when shown: its rows are in the snapshot
        self._draw()

    def on_show(self) -> None:
        self._draw()

    def _draw(self) -> None:
        snap = self.last
        if snap is None:
            return
        text = self.filter_box.value
        shown = [p for p in snap.waiting if matches(p, text)]
        self.table.show(shown, snap.taken_at)
        note = self.query_one("#waiting-note", Static)
        if not snap.waiting:
            show(note, "Nothing waits: every file seen has moved")
            return
        oldest = f"the oldest has waited {waited(snap.oldest_pending_age)} ({snap.waiting[0].why})"
        matched = f"; {len(shown)} match the filter" if text.strip() else ""
        show(
            note,
            f"{len(snap.waiting)} file(s) waiting longest, longest first; {oldest}{matched}; enter shows one",
        )

    def action_filter(self) -> None:
        self.filter_box.focus()

    def action_clear(self) -> None:
        self.filter_box.value = ""
        self.table.focus()

    @on(Input.Changed, "#waiting-filter")
    def _typed(self) -> None:
        self._draw()

    @on(Input.Submitted, "#waiting-filter")
    def _submitted(self) -> None:
        self.table.focus()

    @on(DataTable.RowSelected, "#waiting-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        p = self.table.items.get(event.row_key.value or "")
        if p is not None and self.last is not None:
            lines = [
                f"file:     {safe(p.path)} (in {safe(self.last.source)})",
                f"why:      {p.why}",
                f"waiting:  {waited(self.last.taken_at - p.since)}",
                f"detail:   {safe(p.detail) or '-'}",
            ]
            self.app.push_screen(InfoScreen("Waiting file", Text("\n".join(lines))))
