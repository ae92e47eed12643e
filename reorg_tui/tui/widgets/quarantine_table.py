from __future__ import annotations

import time

from rich.text import Text

from reorg_tui.engine import Record
from reorg_tui.tui.text import age, literal, size
from reorg_tui.tui.widgets.keyed_table import KeyedTable


class QuarantineTable(KeyedTable):
    COLUMNS = (
        ("mark", " "),
        ("file", "File"),
        ("reason", "Reason"),
        ("attempts", "Tries"),
        ("size", "Size"),
        ("age", "Age"),
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.records: dict[str, Record] = {}
        self.marked: set[str] = set()
        self.filter = ""
        self.now: float | None = None  # a fixed clock for deterministic screenshots

    def show(self, records: list[Record]) -> None:
        self.records = {r.id: r for r in records}
        self.marked &= set(self.records)
        self._refill()

    def _refill(self) -> None:
        now = self.now if self.now is not None else time.time()
        needle = self.filter.lower()
        rows = {}
        for r in self.records.values():
            if needle and needle not in r.name.lower() and needle not in r.reason.lower():
                continue
            rows[r.id] = (
                Text("●", style="bold") if r.id in self.marked else Text(" "),
                literal(r.name),
                literal(r.reason),
                str(r.attempts),
                size(r.size),
                age(max(0.0, now - r.quarantined_at)),
            )
        self.sync(rows)

    def set_filter(self, text: str) -> None:
        self.filter = text
        self._refill()

    def toggle_mark(self) -> None:
        key = self.current_key
        if key is None:
            return
        self.marked ^= {key}
        self._refill()

    def mark_shown(self) -> None:
        """Mark every row shown: all of them, or those the filter lets through."""
        self.marked |= {key.value for key in self.rows if key.value is not None}
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
