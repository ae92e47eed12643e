from __future__ import annotations

from reorg_tui.engine import Snapshot
from reorg_tui.tui.text import literal
from reorg_tui.tui.widgets.keyed_table import KeyedTable


class RetryTable(KeyedTable):
    COLUMNS = (("file", "File"), ("attempts", "Attempts"), ("next", "Next try"), ("error", "Last error"))

    def show(self, snap: Snapshot) -> None:
        rows = {}
        for item in snap.retry_head:
            wait = 0.0 if item.next_try is None else item.next_try - snap.taken_at  # None: in flight
            next_in = "now" if wait <= 0 else f"in {wait:.0f}s" if wait >= 1 else "in <1s"
            rows[item.path] = (literal(item.path), str(item.attempts), next_in, literal(item.last_error))
        self.sync(rows)
