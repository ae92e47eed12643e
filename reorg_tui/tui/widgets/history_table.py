"""The History view's rows: one transfer each, newest first (the ledger's order)."""

from __future__ import annotations

from reorg_tui.engine.ledger import Transfer
from reorg_tui.history import Roots, outcome, stamp, when
from reorg_tui.tui.text import literal
from reorg_tui.tui.widgets.keyed_table import KeyedTable


class HistoryTable(KeyedTable):
    COLUMNS = (
        ("when", "When"),
        ("outcome", "Outcome"),  # before the paths: a long path pushes what follows off the edge
        ("from", "From"),
        ("to", "To"),
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.transfers: dict[str, Transfer] = {}

    def show(self, rows: list[Transfer], roots: Roots) -> None:
        """From below the source, to below the destination (or ``quarantine/``): what differs."""
        self.transfers = {str(row.id): row for row in rows}
        self.sync(
            {
                key: (
                    stamp(when(row)),
                    outcome(row),
                    literal(roots.short(row.source_path)),
                    literal(roots.short(row.target_path)),
                )
                for key, row in self.transfers.items()
            }
        )
