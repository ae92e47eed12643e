"""Records shown whole, one key from a row: a quarantined file (with release and delete one key
away), an event from the Activity pane, a file in the retry queue, a transfer in the history.
Paths and errors are never cut: they wrap."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from reorg_tui.engine import Record, RetryItem, Snapshot
from reorg_tui.engine import events as ev
from reorg_tui.engine.ledger import Transfer
from reorg_tui.history import attempts as attempt_count
from reorg_tui.history import meaning, outcome
from reorg_tui.present import describe as describe_event
from reorg_tui.present import duration, event_fields
from reorg_tui.tui.text import age, literal, size, stamp
from reorg_tui.tui.widgets.retry_table import attempts, next_try

# The JSON log's keys (present.event_fields) as a person reads them.
LABELS = {"file": "source", "bytes": "size", "duration": "took", "delay": "again in", "id": "id"}


def fields(rows: Iterable[tuple[str, Text]]) -> Text:
    """Labelled lines: the label right-aligned, its value after it."""
    text = Text()
    for label, value in rows:
        text.append(f"{label:>12}  ", style="bold")
        text.append_text(value)
        text.append("\n")
    return text


def bullets(text: Text, title: str, lines: Iterable[str]) -> Text:
    """``text``, then a titled list: one line each, shown literally."""
    text.append(f"\n{title}\n", style="bold underline")
    for line in lines:
        text.append("  • ")
        text.append_text(literal(line))
        text.append("\n")
    return text


def describe(record: Record, path: str, now: float) -> Text:
    text = fields(
        (
            ("file", literal(record.name)),
            ("id", Text(record.id)),
            ("stored at", literal(path)),
            ("original", literal(record.original or "-")),
            ("intended", literal(record.intended or "-")),
            ("reason", literal(record.reason)),
            ("attempts", Text(str(record.attempts))),
            ("size", Text(size(record.size))),
            (
                "quarantined",
                Text(f"{stamp(record.quarantined_at)} ({age(max(0.0, now - record.quarantined_at))} ago)"),
            ),
        )
    )
    return bullets(text, "error history", record.errors or ["(none recorded)"])


def event_text(event: ev.Event, quarantine_dir: str) -> Text:
    """An event as the log has it (whole paths, the whole error), then field by field."""
    rows = [("event", Text(event.kind)), ("at", Text(stamp(event.at)))]
    rows += [(LABELS.get(key, key), Text(_value(key, value))) for key, value in event_fields(event).items()]
    if isinstance(event, ev.Quarantined):
        rows.append(
            ("stored at", literal(f"{quarantine_dir}/{event.item_id}/{os.path.basename(event.source)}"))
        )
    text = Text(describe_event(event), style="bold")  # already escaped, as the log writes it
    text.append("\n\n")
    text.append_text(fields(rows))
    return text


def retry_text(item: RetryItem, snap: Snapshot) -> Text:
    text = fields(
        (
            ("file", literal(os.path.basename(item.path))),
            ("source", literal(os.path.join(snap.source, item.path))),
            ("attempts", Text(attempts(item))),
            ("next try", Text(next_try(item, snap))),
            ("last error", literal(item.last_error)),
        )
    )
    if len(item.errors) > 1:  # its history, when there is more than the last error
        text = bullets(text, "error history (latest last)", item.errors)
    return text


def transfer_text(row: Transfer) -> Text:
    """A transfer from the ledger: both whole paths, its times, and every earlier attempt's error."""
    rows = [
        ("file", literal(os.path.basename(row.target_path))),
        ("outcome", Text(outcome(row) + (f": {meaning(row)}" if meaning(row) else ""))),
        ("from", literal(row.source_path)),
        ("to", literal(row.target_path)),
        ("started", Text(stamp(row.started))),
        ("finished", Text(stamp(row.finished) if row.finished is not None else "-")),
        ("attempts", Text(attempt_count(row))),
        ("size", Text(f"{size(row.identity.size)} ({row.identity.size:,} bytes)")),
        ("batch", literal(row.batch or "-")),
        ("id", Text(str(row.id))),
    ]
    if row.undoes is not None:
        rows.append(("undoes", Text(str(row.undoes))))
    return bullets(fields(rows), "errors of earlier attempts", row.errors or ["(none)"])


def _value(key: str, value: Any) -> str:
    if key == "bytes":
        return f"{size(value)} ({value:,} bytes)"
    if key == "duration":
        return duration(value)
    if key == "delay":
        return f"{value:.1f} s"
    return str(value)


CLOSE = Binding("escape,q", "choose(None)", "Close", id="details.close")


class RecordScreen(ModalScreen[str | None]):
    """A record in a box over the dashboard. Dismisses with a choice or None."""

    def __init__(self, title: str, text: Text) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details-box"):
            yield Static(self.text, id="details-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#details-box").border_title = self.title_text

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class InfoScreen(RecordScreen):
    """Something to read: escape closes it."""

    BINDINGS = [CLOSE]


class DetailsScreen(RecordScreen):
    """A quarantined file. Dismisses with "release", "delete" or None."""

    BINDINGS = [
        Binding("r", "choose('release')", "Release", id="details.release"),
        Binding("d", "choose('delete')", "Delete", id="details.delete"),
        CLOSE,
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A read-only viewer (--read-only) reads the details; it releases and deletes nothing."""
        return not (
            getattr(self.app, "read_only", False) and action == "choose" and parameters[:1] != (None,)
        )

    def __init__(self, record: Record, path: str, now: float | None = None) -> None:
        super().__init__("Quarantined file", describe(record, path, now or time.time()))
        self.record = record
        self.path = path
