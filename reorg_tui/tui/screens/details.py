"""Everything known about one quarantined file, with release and delete one key away."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from reorg_tui.engine import Record
from reorg_tui.tui.text import age, literal, size


def describe(record: Record, path: str, now: float) -> Text:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.quarantined_at))
    text = Text()
    for label, value in (
        ("file", literal(record.name)),
        ("id", Text(record.id)),
        ("stored at", literal(path)),
        ("original", literal(record.original or "-")),
        ("intended", literal(record.intended or "-")),
        ("reason", literal(record.reason)),
        ("attempts", Text(str(record.attempts))),
        ("size", Text(size(record.size))),
        ("quarantined", Text(f"{when} ({age(max(0.0, now - record.quarantined_at))} ago)")),
    ):
        text.append(f"{label:>12}  ", style="bold")
        text.append_text(value)
        text.append("\n")
    text.append("\nerror history\n", style="bold underline")
    for line in record.errors or ["(none recorded)"]:
        text.append("  • ")
        text.append_text(literal(line))
        text.append("\n")
    return text


class DetailsScreen(ModalScreen[str | None]):
    """Dismisses with "release", "delete" or None."""

    BINDINGS = [
        Binding("r", "choose('release')", "Release", id="details.release"),
        Binding("d", "choose('delete')", "Delete", id="details.delete"),
        Binding("escape,q", "choose(None)", "Close", id="details.close"),
    ]

    def __init__(self, record: Record, path: str, now: float | None = None) -> None:
        super().__init__()
        self.record = record
        self.path = path
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details-box"):
            yield Static(describe(self.record, self.path, self.now or time.time()), id="details-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#details-box").border_title = "Quarantined file"

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
