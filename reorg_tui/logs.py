"""Structured logs: one line a record, in text for people or JSON for log shippers.

An event's words and JSON keys come from present.py. File names are user data: control
characters, bidirectional overrides and undecodable bytes are escaped, so no name can forge or
garble a log line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from reorg_tui import stdio
from reorg_tui.engine import LogHealth, Snapshot
from reorg_tui.engine import events as ev
from reorg_tui.logsink import Sink
from reorg_tui.names import safe
from reorg_tui.present import WORDS, Words, moved, summary

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


def _text_line(created: float, levelname: str, message: str) -> str:
    return f"{_stamp(created)} {levelname:<7} {message}"


def _json_record(
    created: float, level: str, event: str, message: str, fields: dict[str, Any]
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "time": _stamp(created),
        "level": level,
        "event": event,
        "message": message,
    }
    data.update(fields)
    return data


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = _json_record(
            record.created,
            record.levelname.lower(),
            getattr(record, "event", "log"),
            safe(record.getMessage()),
            getattr(record, "fields", {}),
        )
        if record.exc_info:
            data["error"] = safe(self.formatException(record.exc_info))
        return _to_json(data)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = _text_line(record.created, record.levelname, safe(record.getMessage()))
        if record.exc_info:
            line += " | " + safe(self.formatException(record.exc_info))
        return line


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
    _format = fmt
    if stream is None and 2 in stdio.closed_at_start:  # fd 2 is /dev/null now, not a log
        _sink = Sink(None, _dropped_note, lost="stderr was closed at start: there is no log")
    else:
        _sink = Sink(stream or sys.stderr, _dropped_note)
    handler = SinkHandler(_sink)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    """The level lines are logged at (at start, and by a reload)."""
    logging.getLogger().setLevel(level)
    logging.getLogger("watchdog").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def flush() -> None:
    """Write what is queued, waiting at most Sink.EXIT_FLUSH_SECONDS (a stuck log is not waited
    for)."""
    if _sink is not None:
        _sink.flush()


def health() -> LogHealth:
    """How the log fares (for Engine.watch_log: status and the metrics report it)."""
    return _sink.health() if _sink is not None else LogHealth()


def _dropped_note(dropped: int, seconds: float) -> str:
    """The one line, once the log takes lines again, on those it could not take."""
    message = f"{dropped} log line(s) dropped: the log could not be written for {seconds:.1f}s"
    if _format == "json":
        fields = {"dropped": dropped, "seconds": round(seconds, 3)}
        return _to_json(_json_record(time.time(), "warning", "log_dropped", message, fields))
    return _text_line(time.time(), "WARNING", message)


_MOVED = WORDS[ev.Moved]
_MOVED_LEVEL = logging.getLevelName(_MOVED.level)
_MOVED_TEXT = f"{_MOVED_LEVEL:<7} "  # padded once, not once a line


def _json_line(event: ev.Event, words: Words[Any], level: str, created: float) -> str:
    message = words.message_of(event)
    return _to_json(_json_record(created, level, words.event_of(event), message, words.fields(event)))


def emit(level: int, event: str, message: str, *args: Any, **fields: Any) -> None:
    if not log.isEnabledFor(level):
        return
    clean = {k: safe(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None}
    log.log(level, message, *args, extra={"event": event, "fields": clean})


def log_events(events: list[ev.Event]) -> None:
    """The headless face's subscriber: one line per engine event, in order. The lines for a run
    of moved files go to the sink in one write."""
    if _sink is None:
        return
    lines: list[str] = []
    log_moves = log.isEnabledFor(_MOVED.level)
    text, json_level = _format != "json", _MOVED_LEVEL.lower()
    for event in events:
        if type(event) is ev.Moved:  # one line a file, tens of thousands a second: made right here
            if log_moves:
                lines.append(
                    f"{_stamp(event.at)} {_MOVED_TEXT}{moved(event)}"
                    if text
                    else _json_line(event, _MOVED, json_level, event.at)
                )
            continue
        if lines:
            _sink.write_many(lines)
            lines = []
        _log_record(event, _sink)
    if lines:
        _sink.write_many(lines)


def _log_record(event: ev.Event, sink: Sink) -> None:
    """The line for any event but a move, stamped when it is logged; from a warning up it is
    written at once, as SinkHandler writes a record."""
    words = WORDS.get(type(event))
    if words is None:
        return
    level = words.level_of(event)
    if not log.isEnabledFor(level):
        return
    levelname = logging.getLevelName(level)
    if _format == "json":
        line = _json_line(event, words, levelname.lower(), time.time())
    else:
        line = _text_line(time.time(), levelname, words.line(event))
    sink.write(line, urgent=level >= logging.WARNING)


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
        attempts=t.attempts,
        failed_attempts=t.failed_attempts,
        retried=t.retried,
        quarantined=t.quarantined,
        vanished=t.vanished,
        renamed=t.renamed,
        ignored=t.ignored,
        retry_queue=snap.queues.retry,
        quarantine_count=snap.quarantine.count,
        files_per_second=round(snap.files_per_second[60], 3),
        error_rate=round(snap.error_rate, 4),
        disk_free_percent=round(snap.disk.free_percent, 2),
    )
