"""The quarantine browser: a filterable table; details, release and delete one key away.

It lists nothing itself: the app loads the quarantine in a thread worker and hands it the
records, so the UI thread never touches the filesystem. A note above the rows says how many
the filter lets through, and when the table holds only the first of them (see the table).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from reorg_tui.names import safe
from reorg_tui.tui.widgets.quarantine_table import QuarantineTable


class QuarantineView(Vertical):
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="quarantine.filter"),
        Binding("space", "mark", "Mark", id="quarantine.mark"),
        Binding("a", "mark_shown", "Mark all", show=False, id="quarantine.mark-shown"),
        Binding("s", "sort", "Sort", show=False, id="quarantine.sort"),
        Binding("u", "clear_marks", "Clear marks", show=False, id="quarantine.clear-marks"),
        Binding("r", "app.release", "Release", id="quarantine.release"),
        Binding("d", "app.delete", "Delete", id="quarantine.delete"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="quarantine.clear"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Marks serve release and delete: a read-only viewer (--read-only) has neither."""
        return not (getattr(self.app, "read_only", False) and action in ("mark", "mark_shown", "clear_marks"))

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter by name or reason", id="quarantine-filter")
        yield Static(id="quarantine-note", markup=False)
        yield QuarantineTable(id="quarantine-table")

    @property
    def table(self) -> QuarantineTable:
        return self.query_one(QuarantineTable)

    def action_filter(self) -> None:
        box = self.query_one("#quarantine-filter", Input)
        box.add_class("-visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#quarantine-filter", Input)
        box.value = ""
        box.remove_class("-visible")
        self.table.set_filter("")  # at once: what comes next (mark all, say) sees every row
        self.table.focus()

    def action_mark(self) -> None:
        self.table.toggle_mark()

    def action_sort(self) -> None:
        self.table.cycle_sort()

    def action_mark_shown(self) -> None:
        self.table.mark_shown()

    def action_clear_marks(self) -> None:
        self.table.clear_marks()

    def on_quarantine_table_shown(self, message: QuarantineTable.Shown) -> None:
        note = self.query_one("#quarantine-note", Static)
        unusual = message.order != "oldest first"  # sorted otherwise: the note says how
        note.set_class(bool(message.needle) or message.shown < message.matched or unusual, "-visible")
        # One line high whatever it says (app.tcss): no layout of the whole screen per keystroke.
        note.update(note_text(message), layout=False)

    @on(Input.Changed, "#quarantine-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, "#quarantine-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    @on(DataTable.RowSelected, "#quarantine-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.app.action_details(event.row_key.value)  # type: ignore[attr-defined]


def note_text(shown: QuarantineTable.Shown) -> str:
    """Say what the rows are: all of them, or those the filter lets through, and whether the
    table holds them all yet."""
    if shown.needle:
        what = f"{shown.matched:,} of {shown.total:,} match {safe(shown.needle)!r}"
        what += "" if shown.order == "oldest first" else f", {shown.order}"
    else:
        what = f"{shown.total:,} files, {shown.order}"
    if shown.shown < shown.matched:
        what += f"; {shown.shown:,} listed, more at the last row"
    return what
