"""The quarantine browser's rows: a window of the items the filter lets through.

A quarantine may hold 50,000 items; a DataTable of 50,000 rows takes seconds to fill on the UI
thread. So the table holds the first ``WINDOW`` matches (a few pages), and ``WINDOW`` more each
time the cursor reaches the last row; ``matches`` holds them all (what "mark the rows shown"
marks, what the note counts). Filtering a large listing runs in a thread worker; an answer overtaken by newer
typing (or a newer listing) is dropped. A small one is filtered at once: it costs less than a
frame, and what a key does next (mark the rows shown) sees its rows.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import DataTable

from reorg_tui.engine import Record
from reorg_tui.tui.quarantine_listing import SORT_CYCLE, SORTS, Listing
from reorg_tui.tui.text import age, literal, size
from reorg_tui.tui.widgets.keyed_table import KeyedTable

# Rows in the table at first, and as many again each time the cursor reaches the last: some
# pages' worth. Each row costs the UI thread its cells' measuring when the rows are replaced.
WINDOW = 100  # rows held: a tall terminal's page; each costs the UI thread at every refill
FILTER_INLINE = 2_000  # items up to which a filter runs on the UI thread (about a millisecond)


class QuarantineTable(KeyedTable):
    COLUMNS = (
        ("mark", " "),
        ("file", "File"),
        ("reason", "Reason"),
        ("attempts", "Tries"),
        ("size", "Size"),
        ("age", "Age"),
    )

    class Filtered(Message):
        """A worker's answer for the look numbered ``serial``: the listing in the order asked
        for, and the ids the filter lets through."""

        def __init__(self, serial: int, listing: Listing, matches: tuple[str, ...]) -> None:
            super().__init__()
            self.serial = serial
            self.listing = listing
            self.matches = matches

    class Shown(Message):
        """The rows changed: how many match, of how many, how many the table holds, and their
        order in words."""

        def __init__(
            self, matched: int, total: int, shown: int, needle: str, order: str = "oldest first"
        ) -> None:
            super().__init__()
            self.matched = matched
            self.total = total
            self.shown = shown
            self.needle = needle
            self.order = order

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.listing = Listing()
        self.matches: tuple[str, ...] = ()  # every id the filter lets through, in order
        self.window = WINDOW
        self.marked: set[str] = set()
        self.filter = ""
        self.sort: tuple[str, bool | None] = ("age", None)  # a column of SORTS; None: its first order
        self.now: float | None = None  # a fixed clock for deterministic screenshots
        self._serial = 0  # the newest look asked for
        self._answered = 0  # the look whose matches are shown

    @property
    def records(self) -> dict[str, Record]:
        return self.listing.by_id

    @property
    def settled(self) -> bool:
        """The rows answer the filter as typed, over the newest listing."""
        return self._answered == self._serial

    def show(self, listing: Listing) -> None:
        self.listing = listing
        self.marked &= set(listing.by_id)
        self._look()

    def set_filter(self, text: str) -> None:
        self.filter = text
        self.window = WINDOW
        self._look()

    def sort_by(self, column: str) -> None:
        """Order the rows by ``column`` (SORTS), in its first order; again: the other way."""
        if column not in SORTS:
            return
        now, descending = self.sort
        if now == column:
            first = SORTS[column][1]
            self.sort = (column, not (first if descending is None else descending))
        else:
            self.sort = (column, None)
        self.window = WINDOW
        self._look()

    def cycle_sort(self) -> None:
        """The next column of SORT_CYCLE, in its first order (`s`)."""
        at = SORT_CYCLE.index(self.sort[0]) if self.sort[0] in SORT_CYCLE else -1
        self.sort = (SORT_CYCLE[(at + 1) % len(SORT_CYCLE)], None)
        self.window = WINDOW
        self._look()

    def _in_order(self, listing: Listing) -> Listing:
        column, descending = self.sort
        down = SORTS[column][1] if descending is None else descending
        if (listing.sort, listing.descending) == (column, down):
            return listing
        return listing.sorted_by(column, down)

    def _look(self) -> None:
        self._serial += 1
        if len(self.listing) <= FILTER_INLINE:
            listing = self._in_order(self.listing)
            self._answer(self._serial, listing, listing.matching(self.filter))
        else:
            self._match(self._serial, self.listing, self.filter)

    # A description of its own: by default Textual describes a worker by the repr of its
    # arguments, on the UI thread, and a listing's is 50,000 records long.
    @work(thread=True, group="quarantine-filter", exit_on_error=False, description="filtering the quarantine")
    def _match(self, serial: int, listing: Listing, needle: str) -> None:
        ordered = self._in_order(listing)  # sorting 50,000 records: off the UI thread too
        self.post_message(self.Filtered(serial, ordered, ordered.matching(needle)))

    def on_quarantine_table_filtered(self, message: Filtered) -> None:
        message.stop()
        if message.serial == self._serial:  # else overtaken: newer typing, or a newer listing
            self._answer(message.serial, message.listing, message.matches)

    def _answer(self, serial: int, listing: Listing, matches: tuple[str, ...]) -> None:
        self._answered = serial
        self.listing = listing
        self.matches = matches
        self._refill()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it (again: the other way)."""
        event.stop()
        self.sort_by(str(event.column_key.value))

    def _refill(self) -> None:
        now = self.now if self.now is not None else time.time()
        rows = {}
        for item_id in self.matches[: self.window]:
            r = self.listing.by_id[item_id]
            rows[item_id] = (
                Text("●", style="bold") if item_id in self.marked else Text(" "),
                literal(r.name),
                literal(r.reason),
                str(r.attempts),
                size(r.size),
                age(max(0.0, now - r.quarantined_at)),
            )
        self.sync(rows)
        shown = self.Shown(len(self.matches), len(self.listing), len(rows), self.filter, self.listing.order)
        self.post_message(shown)

    @on(DataTable.RowHighlighted)
    def _more(self, event: DataTable.RowHighlighted) -> None:
        """The cursor reached the last row: the next ``WINDOW`` matches join (added at the end)."""
        if event.cursor_row == self.row_count - 1 and self.row_count < len(self.matches):
            self.window = self.row_count + WINDOW
            self._refill()

    def toggle_mark(self) -> None:
        key = self.current_key
        if key is None:
            return
        self.marked ^= {key}
        self._refill()

    def mark_shown(self) -> None:
        """Mark every item the filter lets through (all of them, with none), the rows further
        down that the table does not hold yet included."""
        matches = self.matches if self.settled else self.listing.matching(self.filter)
        self.marked.update(matches)
        self._refill()

    def clear_marks(self) -> None:
        self.marked.clear()
        self._refill()

    def selection(self) -> list[str]:
        """The marked items, or else the one under the cursor."""
        if self.marked:
            return sorted(self.marked)
        key = self.current_key
        return [key] if key else []
