"""A DataTable updated in place by key: no clearing and refilling, so the cursor stays put, on
the row it was on (not the row number) when rows above it come and go: a filter, a release.
Home/End and g/G go to the first and last row (a DataTable scrolls sideways on Home/End)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

Cells = Sequence[str | Text]


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
        """Make the table hold exactly ``rows`` (key -> cells), touching only what changed."""
        current = self.current_key
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
