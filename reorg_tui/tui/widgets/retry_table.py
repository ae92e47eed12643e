from __future__ import annotations

from reorg_tui.engine import RetryItem, Snapshot, State
from reorg_tui.tui.text import literal
from reorg_tui.tui.widgets.keyed_table import KeyedTable


def next_try(item: RetryItem, snap: Snapshot) -> str:
    """When a file is tried next; while intake is paused, what it waits for instead (nothing is
    tried then, though a file whose time came is handed to intake and has no time any more)."""
    if item.for_room or snap.state == State.PAUSED_DISK:
        return "waiting for room"
    wait = 0.0 if item.next_try is None else item.next_try - snap.taken_at  # None: in flight
    if wait <= 0 and snap.state == State.PAUSED:
        return "when resumed"
    return "now" if wait <= 0 else f"in {wait:.0f}s" if wait >= 1 else "in <1s"


def attempts(item: RetryItem) -> str:
    """A file that only waited for room has made no attempt: no "0" that reads as a count."""
    return str(item.attempts) if item.attempts else "none"


class RetryTable(KeyedTable):
    """The files waiting for another try; enter shows one whole (its path, its whole error)."""

    COLUMNS = (("file", "File"), ("attempts", "Attempts"), ("next", "Next try"), ("error", "Last error"))

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.items: dict[str, RetryItem] = {}
        self.last: Snapshot | None = None  # the snapshot shown, for a row's details

    def show(self, snap: Snapshot) -> None:
        self.last, self.items = snap, {item.path: item for item in snap.retry_head}
        rows = {}
        for item in snap.retry_head:
            rows[item.path] = (
                literal(item.path),
                attempts(item),
                next_try(item, snap),
                literal(item.last_error),
            )
        self.sync(rows)
