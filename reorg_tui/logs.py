"""Structured logs: one line a record, in text for people or JSON for log shippers.

File names are user data: control characters, bidirectional overrides and undecodable bytes are
escaped, so no name can forge or garble a log line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

import humanize

from reorg_tui.engine import events as ev
from reorg_tui.engine.metrics import Snapshot

log = logging.getLogger("reorg_tui")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\udc80-\udcff\\\\]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """Printable, one-line form of a name: never interpreted by a terminal or a log reader."""
    return _UNSAFE.sub(_escape, text)


def _stamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _stamp(record.created),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": safe(record.getMessage()),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["error"] = safe(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_stamp(record.created)} {record.levelname:<7} {safe(record.getMessage())}"
        if record.exc_info:
            line += " | " + safe(self.formatException(record.exc_info))
        return line


class _FlushingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Flushes every record: under supervisord stderr is a pipe, not a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.flush()


def setup(level: str, fmt: str, stream: TextIO | None = None) -> None:
    handler = _FlushingHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("watchdog").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def emit(level: int, event: str, message: str, *args: Any, **fields: Any) -> None:
    if not log.isEnabledFor(level):
        return
    clean = {k: safe(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None}
    log.log(level, message, *args, extra={"event": event, "fields": clean})


def log_event(event: ev.Event) -> None:
    """The headless face's subscriber: one record per engine event."""
    if isinstance(event, ev.Moved) and not log.isEnabledFor(logging.INFO):
        return  # the commonest event: skip formatting it when nobody reads it
    if isinstance(event, ev.Moved):
        emit(
            logging.INFO,
            "moved",
            "moved %s -> %s (%s, %.1f ms%s)",
            event.source,
            event.destination,
            humanize.naturalsize(event.size, binary=True),
            event.seconds * 1000,
            "" if event.how in ("moved", "copied") else f", {event.how}",
            file=event.source,
            destination=event.destination,
            bytes=event.size,
            duration=round(event.seconds, 6),
            how=event.how,
        )
    elif isinstance(event, ev.Retried):
        emit(
            logging.WARNING,
            "retried",
            "retry %d for %s in %.1fs: %s",
            event.attempt,
            event.source,
            event.delay,
            event.error,
            file=event.source,
            attempt=event.attempt,
            error=event.error,
            delay=round(event.delay, 3),
        )
    elif isinstance(event, ev.Quarantined):
        emit(
            logging.WARNING,
            "quarantined",
            "quarantined %s after %d attempt(s): %s (id %s)",
            event.source,
            event.attempts,
            event.reason,
            event.item_id,
            file=event.source,
            attempt=event.attempts,
            error=event.reason,
            id=event.item_id,
        )
    elif isinstance(event, ev.Failed):
        emit(
            logging.ERROR,
            "failed",
            "%s stays in the source: %s",
            event.source,
            event.error,
            file=event.source,
            error=event.error,
        )
    elif isinstance(event, ev.Skipped):
        emit(
            logging.INFO,
            "skipped",
            "skipped %s: %s exists",
            event.source,
            event.existing,
            file=event.source,
            destination=event.existing,
        )
    elif isinstance(event, ev.Vanished):
        emit(
            logging.INFO, "vanished", "%s vanished before it could be moved", event.source, file=event.source
        )
    elif isinstance(event, (ev.Paused, ev.Resumed)):
        what = "paused" if isinstance(event, ev.Paused) else "resumed"
        level = logging.WARNING if what == "paused" and event.reason == "disk" else logging.INFO
        emit(level, what, "intake %s (%s)", what, event.reason, reason=event.reason)
    elif isinstance(event, ev.Alert):
        level = logging.WARNING if event.active else logging.INFO
        what = "alert" if event.active else "alert_recovered"
        emit(
            level,
            what,
            "%s: %s",
            "ALERT" if event.active else "recovered",
            event.message,
            alert=event.name,
            active=event.active,
        )
    elif isinstance(event, ev.Warning):
        emit(logging.WARNING, "warning", "%s", event.message)


def summary(snap: Snapshot) -> str:
    """One line of health: the same numbers the dashboard and status show."""
    t = snap.totals
    return (
        f"{snap.state}: moved {t.moved} ({humanize.naturalsize(t.bytes, binary=True)}), "
        f"{snap.files_per_second[60]:.1f} files/s over 1 min, "
        f"errors {snap.error_rate:.1%}, retry queue {snap.queues.retry}, "
        f"quarantine {snap.quarantine.count}, ignored {t.ignored}, "
        f"disk {snap.disk.free_percent:.1f}% free"
    )


def log_summary(snap: Snapshot, event: str = "stats") -> None:
    t = snap.totals
    emit(
        logging.INFO,
        event,
        "%s",
        summary(snap),
        state=snap.state,
        moved=t.moved,
        bytes=t.bytes,
        failed_attempts=t.failed_attempts,
        retried=t.retried,
        quarantined=t.quarantined,
        vanished=t.vanished,
        ignored=t.ignored,
        retry_queue=snap.queues.retry,
        quarantine_count=snap.quarantine.count,
        files_per_second=round(snap.files_per_second[60], 3),
        error_rate=round(snap.error_rate, 4),
        disk_free_percent=round(snap.disk.free_percent, 2),
    )
