"""A DataTable updated in place by key: no clearing and refilling, so the cursor stays put, on
the row it was on (not the row number) when rows above it come and go: a filter, a release.
Home/End and g/G go to the first and last row (a DataTable scrolls sideways on Home/End)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

Cells = Sequence[str | Text]
REMOVED_IN_PLACE = 8  # rows removed one by one at most; more, and the table is filled anew


class KeyedTable(DataTable[str | Text]):
    COLUMNS: tuple[tuple[str, str], ...] = ()  # (key, label)
    BINDINGS = [
        Binding("home,g", "first_row", "First row", show=False, id="table.first"),
        Binding("end,G", "last_row", "Last row", show=False, id="table.last"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._cells: dict[str, tuple[str | Text, ...]] = {}

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    @property
    def column_keys(self) -> list[str]:
        """The columns shown now, in order (a table may leave some out where they do not fit)."""
        return [str(key.value) for key in self.columns]

    def sync(self, rows: Mapping[str, Cells]) -> None:
        """Make the table hold exactly ``rows`` (key -> cells, in that order), touching only what
        changed: a refresh that changes a few cells or adds a row at the end updates them in
        place. When rows go or come in between (a filter typed, a release), it replaces the
        rows in one go: each ``remove_row`` renumbers every row after it, so removing rows one by
        one costs the square of the table's length (minutes at 50,000 rows)."""
        current = self.current_key
        kept = [key for key in self._cells if key in rows]
        removed = len(self._cells) - len(kept)
        if removed > REMOVED_IN_PLACE or list(itertools.islice(rows, len(kept))) != kept:
            self._replace(rows, current)
            return
        for key in [k for k in self._cells if k not in rows]:
            self.remove_row(key)
            del self._cells[key]
        for key, cells in rows.items():
            old = self._cells.get(key)
            new = tuple(cells)
            if old is None:
                self.add_row(*new, key=key)
            elif old != new:
                for column, before, after in zip(self.column_keys, old, new, strict=True):
                    if before != after:
                        self.update_cell(key, column, after)
            self._cells[key] = new
        if current in self._cells and self.get_row_index(current) != self.cursor_row:
            self.move_cursor(row=self.get_row_index(current))

    def _replace(self, rows: Mapping[str, Cells], current: str | None) -> None:
        """All rows anew, in order; the cursor stays on its row where it is still there, else
        on the same row number (the row after the one that left)."""
        row = self.cursor_row
        self.clear()
        self._cells = {key: tuple(cells) for key, cells in rows.items()}
        for key, cells in self._cells.items():
            self.add_row(*cells, key=key)
        if current in self._cells:
            row = self.get_row_index(current)
        if self._cells:
            self.move_cursor(row=min(max(row, 0), len(self._cells) - 1))

    @property
    def current_key(self) -> str | None:
        if not self._cells or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))
