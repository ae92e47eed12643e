"""Structured logs: one line a record, in text for people or JSON for log shippers.

File names are user data: control characters, bidirectional overrides and undecodable bytes are
escaped, so no name can forge or garble a log line.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

import humanize

from reorg_tui.engine import events as ev
from reorg_tui.engine.metrics import Snapshot
from reorg_tui.names import safe

log = logging.getLogger("reorg_tui")
_stamp_cache: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))
_to_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps with an option makes one a call


def _stamp(created: float) -> str:
    global _stamp_cache
    second, ms = divmod(int(created * 1000), 1000)
    if _stamp_cache[0] != second:  # one strftime a second, not one a line
        _stamp_cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return _stamp_cache[1] + _MILLIS[ms]


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
        return _to_json(data)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_stamp(record.created)} {record.levelname:<7} {safe(record.getMessage())}"
        if record.exc_info:
            line += " | " + safe(self.formatException(record.exc_info))
        return line


class Sink:
    """Where log lines go, in order. Warnings and errors are flushed at once; the rest within
    FLUSH_SECONDS, many lines to one write: under supervisord stderr is a pipe, and a flush per
    line costs a system call per file moved."""

    FLUSH_SECONDS = 0.2

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._last_flush = 0.0
        self._flusher = threading.Thread(target=self._run, name="reorg-log-flush", daemon=True)
        self._flusher.start()
        atexit.register(self.flush)

    def write(self, line: str, urgent: bool = False) -> None:
        self.write_many([line], urgent)

    def write_many(self, lines: list[str], urgent: bool = False) -> None:
        with self._lock:
            self._pending.extend(lines)
            # A line after a quiet spell goes out at once; under load, lines leave in batches.
            if (
                urgent
                or len(self._pending) >= 1024
                or time.monotonic() - self._last_flush >= self.FLUSH_SECONDS
            ):
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        try:
            self.stream.write("\n".join(self._pending) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken log stream must not stop the moves
        self._pending.clear()

    def _run(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()


class SinkHandler(logging.Handler):
    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.sink.write(line, urgent=record.levelno >= logging.WARNING)


_format = "text"
_sink: Sink | None = None


def setup(level: str, fmt: str, stream: TextIO | None = None) -> None:
    global _format, _sink
    # Skip the per-record work nobody reads: caller lookup (a stack walk), thread and process names.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if _sink is not None:
        _sink.flush()
    _format, _sink = fmt, Sink(stream or sys.stderr)
    handler = SinkHandler(_sink)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("watchdog").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def flush() -> None:
    if _sink is not None:
        _sink.flush()


def _size(n: int) -> str:
    """Like humanize.naturalsize(binary=True), without its per-call translation lookups."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _moved_line(event: ev.Moved) -> str:
    """The commonest record, made without a LogRecord: one line per file moved."""
    how = "" if event.how in ("moved", "copied") else f", {event.how}"
    if _format == "json":
        line = _to_json(
            {
                "time": _stamp(event.at),
                "level": "info",
                "event": "moved",
                "message": f"moved {safe(event.source)} -> {safe(event.destination)}",
                "file": safe(event.source),
                "destination": safe(event.destination),
                "bytes": event.size,
                "duration": round(event.seconds, 6),
                "how": event.how,
            }
        )
    else:
        line = (
            f"{_stamp(event.at)} INFO    moved {safe(event.source)} -> {safe(event.destination)} "
            f"({_size(event.size)}, {event.seconds * 1000:.1f} ms{how})"
        )
    return line


def emit(level: int, event: str, message: str, *args: Any, **fields: Any) -> None:
    if not log.isEnabledFor(level):
        return
    clean = {k: safe(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None}
    log.log(level, message, *args, extra={"event": event, "fields": clean})


def log_events(events: list[ev.Event]) -> None:
    """The headless face's subscriber: one record per engine event, in order. The lines for a
    run of moved files go to the sink in one write."""
    if _sink is None:
        return
    lines: list[str] = []
    moved = log.isEnabledFor(logging.INFO)
    for event in events:
        if type(event) is ev.Moved:
            if moved:
                lines.append(_moved_line(event))
            continue
        if lines:
            _sink.write_many(lines)
            lines = []
        _log_record(event)
    if lines:
        _sink.write_many(lines)


def _log_record(event: ev.Event) -> None:
    """The record for any event but a move."""
    if isinstance(event, ev.Waiting):
        emit(
            logging.WARNING,
            "waiting",
            "waiting for room to move %s, again in %.1fs: %s",
            event.source,
            event.delay,
            event.error,
            file=event.source,
            error=event.error,
            delay=round(event.delay, 3),
        )
    elif isinstance(event, ev.Retried):
        emit(
            logging.WARNING,
            "retried",
            "retry %d for %s, again in %.1fs: %s",
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
