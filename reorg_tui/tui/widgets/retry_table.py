from __future__ import annotations

from reorg_tui.engine import RetryItem, Snapshot, State
from reorg_tui.names import safe
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


def middle(text: str, width: int) -> str:
    """``text`` in ``width`` cells, shortened in the middle (a name's start and its extension
    are what tell files apart)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


PADDING = 2  # a DataTable's cell padding, both sides
LONGEST_NAME = 40  # a name longer is shortened in the middle even where there is room


def layout(width: int, longest_name: int, longest_next: int) -> dict[str, int]:
    """Column -> width for a table ``width`` cells wide. The file and when it is tried next
    always show (the name shortened in the middle where it must be); then the last error and
    the attempts, each while it fits; the error takes what is left."""
    nxt = next(w for w in (8, 12, 16, longest_next) if w >= longest_next)  # in steps: few relayouts
    file = min(max(12, longest_name, len("File")), LONGEST_NAME)
    file = max(12, min(file, width - (nxt + PADDING) - PADDING))
    chosen = {"file": file, "next": nxt}
    room = width - (file + PADDING) - (nxt + PADDING)
    for key, least in (("error", 12), ("attempts", len("Attempts"))):
        if least + PADDING <= room:
            chosen[key] = least
            room -= least + PADDING
    if "error" in chosen:
        chosen["error"] += max(0, room)
    else:
        chosen["file"] += max(0, min(room, longest_name - file))
    return chosen


class RetryTable(KeyedTable):
    """The files waiting for another try; enter shows one whole (its path, its whole error).
    Columns that do not fit the pane's width are left out by priority (the attempts first, then
    the last error; the file and when it is tried next stay), and long names are shortened in
    the middle, so a row is never cut off at the pane's edge before its next try."""

    COLUMNS = (("file", "File"), ("attempts", "Attempts"), ("next", "Next try"), ("error", "Last error"))

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.items: dict[str, RetryItem] = {}
        self.last: Snapshot | None = None  # the snapshot shown, for a row's details
        self._widths: dict[str, int] = {}

    def on_resize(self) -> None:
        if self.last is not None:
            self.show(self.last)

    def show(self, snap: Snapshot) -> None:
        self.last, self.items = snap, {item.path: item for item in snap.retry_head}
        nexts = {item.path: next_try(item, snap) for item in snap.retry_head}
        longest = max((len(safe(item.path)) for item in snap.retry_head), default=0)
        widths = layout(
            self.scrollable_content_region.width, longest, max(map(len, nexts.values()), default=0)
        )
        keep = self.current_key
        if widths != self._widths:
            self._set_columns(widths)
        rows = {}
        for item in snap.retry_head:
            cells = {
                "file": literal(middle(safe(item.path), widths["file"])),
                "attempts": attempts(item),
                "next": nexts[item.path],
                "error": literal(item.last_error),
            }
            rows[item.path] = tuple(cells[key] for key in self.column_keys)
        self.sync(rows)
        if keep is not None and keep in rows and self.current_key != keep:
            self.move_cursor(row=self.get_row_index(keep))  # after new columns, on its row still

    def _set_columns(self, widths: dict[str, int]) -> None:
        """The columns anew (their rows come back from the next sync)."""
        self._widths = widths
        self.clear(columns=True)
        self._cells = {}
        for key, label in self.COLUMNS:
            if key in widths:
                self.add_column(label, key=key, width=widths[key])
