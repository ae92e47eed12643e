"""The words people read: how each engine event and the health line are worded, in one place.

- A text log line is its stamp and level, then ``describe(event)``; the JSON log carries the same
  words as its ``message`` and ``event_fields(event)`` as its keys (the ones the README names).
- The Activity pane's line is its clock, then ``brief(event, dest)``: the same event in columns for
  a narrow pane (the kind 11 wide, the file's base name, the detail that matters at a glance, with
  paths under the destination relative to it).
- ``summary(snapshot)`` is the one line of health: headless stats, ``status``.

Adding an event kind is one entry in ``WORDS``. Names are user data: every one passes through
``safe()`` here, so what these functions return can be shown as it is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import humanize

from reorg_tui.engine import Snapshot
from reorg_tui.engine import events as ev
from reorg_tui.names import safe

E = TypeVar("E", bound=ev.Event)
PLAIN_MOVES = ("moved", "copied")  # how a file usually arrives (rename or copy): not worth a word
RENAMED = ", renamed: the name was taken"  # a move's words, when the destination has a collision name


@dataclass(frozen=True)
class Words(Generic[E]):
    """How one event class reads in the log and in the Activity pane."""

    level: int  # of its log record
    line: Callable[[E], str]  # describe(): the log's words
    fields: Callable[[E], dict[str, Any]]  # the JSON log's keys after "message"
    # brief(): (kind column, the rest), given the destination root; None: not shown
    columns: Callable[[E, str], tuple[str, str]] | None
    warn_if: Callable[[E], bool] | None = None  # when its record is a warning instead
    event: Callable[[E], str] | None = None  # the JSON log's "event", where it is not the kind
    message: Callable[[E], str] | None = None  # the JSON "message", where keys carry the line's figures

    def level_of(self, event: E) -> int:
        return logging.WARNING if self.warn_if is not None and self.warn_if(event) else self.level

    def event_of(self, event: E) -> str:
        return event.kind if self.event is None else self.event(event)

    def message_of(self, event: E) -> str:
        return (self.message or self.line)(event)


def describe(event: ev.Event) -> str:
    """The one human wording of an event: what its log line says after the stamp and level."""
    return WORDS[type(event)].line(event)


def brief(event: ev.Event, dest: str = "") -> str | None:
    """The event as the Activity pane shows it after its clock, in columns: shorter than
    describe() (the file's base name, no attempt count or id, a path under ``dest`` relative to
    it), so a narrow pane stays readable. None for a kind the pane leaves to another (an alert has
    the banner)."""
    words = WORDS.get(type(event))
    if words is None or words.columns is None:
        return None
    kind, rest = words.columns(event, dest)
    return f"{kind:<11} {rest}"


def event_fields(event: ev.Event) -> dict[str, Any]:
    """The JSON log's keys for an event, beside time, level, event and message."""
    return WORDS[type(event)].fields(event)


def moved(event: ev.Moved, figures: bool = True) -> str:
    """A moved file's words. One log line a file, tens of thousands a second: each form is made by
    one f-string. Without figures: the JSON message, whose keys carry the size and the time."""
    if not figures:
        return f"moved {safe(event.source)} -> {safe(event.destination)}"
    how = "" if event.how in PLAIN_MOVES else f", {event.how}"
    if event.renamed:
        how += RENAMED
    return (
        f"moved {safe(event.source)} -> {safe(event.destination)} "
        f"({_size(event.size)}, {event.seconds * 1000:.1f} ms{how})"
    )


def _moved_columns(event: ev.Moved, dest: str) -> tuple[str, str]:
    """Where it went, first: its folder under ``dest``, and its new name only if it has one (a
    collision renamed it)."""
    how = "" if event.how in PLAIN_MOVES else f" ({event.how})"
    name = _base(event.source)
    where = _under(event.destination, dest)
    folder, new_name = where.rpartition("/")[::2]
    if folder and new_name == name:
        where = folder + "/"
    return "renamed" if event.renamed else "moved", f"{name} → {where}{how} {duration(event.seconds)}"


def _moved_fields(event: ev.Moved) -> dict[str, Any]:
    fields = {
        "file": safe(event.source),
        "destination": safe(event.destination),
        "bytes": event.size,
        "duration": round(event.seconds, 6),
        "how": event.how,
    }
    if event.renamed:  # its own name was taken: the name it has now
        fields["renamed"] = _base(event.destination)
    return fields


def _when(event: ev.Retried | ev.Waiting) -> str:
    return f"in {event.delay:.1f}s: {safe(event.error)}"


def _base(path: str) -> str:
    """A file as a narrow pane names it: its base name (the log gives the whole path)."""
    return safe(os.path.basename(path))


def _under(path: str, dest: str) -> str:
    """A path as a narrow pane shows it: relative to the destination root when below it."""
    root = dest.rstrip("/") + "/"
    return safe(path[len(root) :] if dest and path.startswith(root) else path)


def _intake(warn_if: Callable[[ev.Paused | ev.Resumed], bool] | None) -> Words[ev.Paused | ev.Resumed]:
    """Paused and Resumed read alike: intake, what it did, and why."""
    return Words[ev.Paused | ev.Resumed](
        level=logging.INFO,
        warn_if=warn_if,
        line=lambda e: f"intake {e.kind} ({safe(e.reason)})",
        fields=lambda e: {"reason": safe(e.reason)},
        columns=lambda e, _: (e.kind, f"intake ({safe(e.reason)})"),
    )


WORDS: dict[type[ev.Event], Words[Any]] = {
    ev.Moved: Words[ev.Moved](
        level=logging.INFO,
        line=moved,
        fields=_moved_fields,
        columns=_moved_columns,
        message=lambda e: moved(e, figures=False),
    ),
    ev.Retried: Words[ev.Retried](
        level=logging.WARNING,
        line=lambda e: f"retry {e.attempt} for {safe(e.source)}, again {_when(e)}",
        fields=lambda e: {
            "file": safe(e.source),
            "attempt": e.attempt,
            "error": safe(e.error),
            "delay": round(e.delay, 3),
        },
        columns=lambda e, _: (f"retry {e.attempt}", f"{_base(e.source)} {_when(e)}"),
    ),
    ev.Waiting: Words[ev.Waiting](  # for room (a full or unmounted destination): no attempt
        level=logging.WARNING,
        line=lambda e: f"waiting for room to move {safe(e.source)}, again {_when(e)}",
        fields=lambda e: {"file": safe(e.source), "error": safe(e.error), "delay": round(e.delay, 3)},
        columns=lambda e, _: ("waiting", f"{_base(e.source)}, again {_when(e)}"),
    ),
    ev.Quarantined: Words[ev.Quarantined](
        level=logging.WARNING,
        line=lambda e: (
            f"quarantined {safe(e.source)} after {e.attempts} attempt(s): {safe(e.reason)} "
            f"(id {safe(e.item_id)})"
        ),
        fields=lambda e: {
            "file": safe(e.source),
            "attempt": e.attempts,
            "error": safe(e.reason),
            "id": safe(e.item_id),
        },
        columns=lambda e, _: ("quarantined", f"{_base(e.source)}: {safe(e.reason)}"),
    ),
    ev.Failed: Words[ev.Failed](
        level=logging.ERROR,
        line=lambda e: f"{safe(e.source)} stays in the source: {safe(e.error)}",
        fields=lambda e: {"file": safe(e.source), "error": safe(e.error)},
        columns=lambda e, _: ("FAILED", f"{_base(e.source)}: {safe(e.error)}"),
    ),
    ev.Skipped: Words[ev.Skipped](
        level=logging.INFO,
        line=lambda e: f"skipped {safe(e.source)}: {safe(e.existing)} exists",
        fields=lambda e: {"file": safe(e.source), "destination": safe(e.existing)},
        columns=lambda e, dest: ("skipped", f"{_base(e.source)}: {_under(e.existing, dest)} exists"),
    ),
    ev.Vanished: Words[ev.Vanished](
        level=logging.INFO,
        line=lambda e: f"{safe(e.source)} vanished before it could be moved",
        fields=lambda e: {"file": safe(e.source)},
        columns=lambda e, _: ("vanished", _base(e.source)),
    ),
    ev.Paused: _intake(warn_if=lambda e: e.reason != "operator"),  # the disk, a fleet's coordinator
    ev.Resumed: _intake(warn_if=None),
    ev.Alert: Words[ev.Alert](
        level=logging.INFO,
        warn_if=lambda e: e.active,
        line=lambda e: f"{'ALERT' if e.active else 'recovered'}: {safe(e.message)}",
        fields=lambda e: {"alert": safe(e.name), "active": e.active},
        columns=None,  # the banner shows alerts
        event=lambda e: "alert" if e.active else "alert_recovered",
    ),
    ev.Warning: Words[ev.Warning](
        level=logging.WARNING,
        line=lambda e: safe(e.message),
        fields=lambda e: {},
        columns=lambda e, _: ("warning", safe(e.message)),
    ),
}


def summary(snap: Snapshot) -> str:
    """One line of health: the same numbers the dashboard and status show."""
    t = snap.totals
    renamed = f", {t.renamed} renamed" if t.renamed else ""
    return (
        f"{snap.state}: moved {t.moved} ({humanize.naturalsize(t.bytes, binary=True)}{renamed}), "
        f"{snap.files_per_second[60]:.1f} files/s over 1 min, "
        f"errors {snap.error_rate:.1%}, retry queue {snap.queues.retry}, "
        f"quarantine {snap.quarantine.count}, ignored {t.ignored}, "
        f"disk {snap.disk.free_percent:.1f}% free"
    )


def duration(seconds: float) -> str:
    """How long a move took, as the dashboard shows it: in the unit that suits it."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _size(n: int) -> str:
    """Like humanize.naturalsize(binary=True), without its per-call translation lookups."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
