"""Where log lines go: a writer that no thread ever waits on.

A log nobody reads (a pipe whose reader is wedged, a stopped terminal, a FIFO) blocks the write
that fills it. So lines are only queued by the threads that log (a list append under a short
lock: never I/O under it), and written by one thread of its own, ``reorg-log``. While that
thread waits on a stuck reader the queue is bounded: lines beyond ``MAX_PENDING_CHARS`` are
dropped and counted, and once the log takes lines again one line says how many were lost. The
same counts for a log that cannot be written at all (ENOSPC, EPIPE, no stderr): a move, a stop
or a signal never waits for a log line.

Threads: any thread calls ``write``, ``write_many``, ``flush`` (bounded) and ``health``; only
``reorg-log`` touches the stream.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

from reorg_tui import stdio
from reorg_tui.engine import LogHealth

Note = Callable[[int, float], str]  # (lines dropped, seconds the log was lost) -> the line saying so


class Sink:
    """Warnings and errors are written at once; the rest within FLUSH_SECONDS, many lines to one
    write: under supervisord stderr is a pipe, and a write per line costs a system call per file."""

    FLUSH_SECONDS = 0.2
    BATCH_LINES = 1024  # this many queued lines are written without waiting for FLUSH_SECONDS
    MAX_PENDING_CHARS = 1 << 20  # held, queued or in a write: some 5,000 lines; then dropped
    STALLED_AFTER = 2.0  # seconds one write may wait before the log counts as stalled
    SLOW_WRITE_SECONDS = 0.5  # with the queue full, a logging thread waits this long at most
    EXIT_FLUSH_SECONDS = 2.0  # at exit, what is queued gets this long, no more

    def __init__(self, stream: TextIO | None, note: Note, lost: str | None = None) -> None:
        """``stream``: None when there is none (``lost`` says why: every line is dropped)."""
        self.stream = stream
        self._note = note
        self._fd = _fd_of(stream)
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[str] = []
        self._pending_chars = 0  # queued, and (below) taken by a write under way: both count
        self._writing_chars = 0
        self._urgent = False
        self._taken = 0  # batches taken by the writer, and written (or failed) of them
        self._done = 0
        self._last_write = 0.0  # monotonic; when the latest write ended
        self._writing_since: float | None = None  # monotonic; a write under way
        self._dropped = 0
        self._unreported = 0  # dropped since the last line that said so
        self._lost_since: float | None = None  # monotonic; when lines began to be dropped
        self._error = lost if stream is None else None
        self._writer = threading.Thread(target=self._run, name="reorg-log", daemon=True)
        self._writer.start()
        atexit.register(self.flush, self.EXIT_FLUSH_SECONDS)

    def write(self, line: str, urgent: bool = False) -> None:
        self.write_many([line], urgent)

    def write_many(self, lines: list[str], urgent: bool = False) -> None:
        size = sum(map(len, lines)) + len(lines)
        with self._cond:
            if not self._room(size):
                self._drop(len(lines))
                return
            was_empty = not self._pending
            self._pending.extend(lines)
            self._pending_chars += size
            # A line after a quiet spell goes out at once; under load, lines leave in batches.
            if (
                urgent
                or len(self._pending) >= self.BATCH_LINES
                or time.monotonic() - self._last_write >= self.FLUSH_SECONDS
            ):
                self._urgent = True
                self._cond.notify()
            elif was_empty:
                self._cond.notify()  # the writer waits out the rest of FLUSH_SECONDS for more

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait until what was queued before the call is written (or has failed), at most
        ``timeout`` seconds, and no longer than a write may lag (SLOW_WRITE_SECONDS): a stuck
        log must not hold up a stop. False if it did not get out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._taken + (1 if self._pending else 0)
            self._urgent = True
            self._cond.notify_all()
            while self._done < target:
                if self._writing_since is not None:
                    deadline = min(deadline, self._writing_since + self.SLOW_WRITE_SECONDS)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def health(self) -> LogHealth:
        with self._cond:
            since, error, dropped = self._writing_since, self._error, self._dropped
        waited = 0.0 if since is None else time.monotonic() - since
        stalled = round(waited, 3) if waited >= self.STALLED_AFTER else 0.0
        return LogHealth(dropped_lines=dropped, stalled_seconds=stalled, error=error)

    def _room(self, size: int) -> bool:  # under _cond
        """Whether ``size`` more characters fit. A full queue behind a log that merely lags (a
        burst to a slow disk) holds the caller until the write under way ends, as a direct write
        would; behind one that has not taken a byte for SLOW_WRITE_SECONDS, or cannot be
        written at all, the lines are dropped at once."""
        while self._pending_chars + self._writing_chars + size > self.MAX_PENDING_CHARS:
            if self._error is not None and self.stream is None:
                return False
            began = self._writing_since if self._writing_since is not None else time.monotonic()
            left = began + self.SLOW_WRITE_SECONDS - time.monotonic()
            if left <= 0:
                return False
            self._cond.wait(left)
        return True

    def _drop(self, lines: int) -> None:  # under _cond
        self._dropped += lines
        self._unreported += lines
        if self._lost_since is None:  # lost from when the write that holds everything up began
            self._lost_since = self._writing_since or time.monotonic()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                wait = self.FLUSH_SECONDS - (time.monotonic() - self._last_write)
                if not self._urgent and wait > 0:
                    self._cond.wait(wait)  # more lines join this write
                lines, self._pending = self._pending, []
                self._writing_chars, self._pending_chars = self._pending_chars, 0
                self._urgent = False
                self._taken += 1
                self._writing_since = time.monotonic()
            error = self._write(lines)
            with self._cond:
                now = time.monotonic()
                self._writing_since, self._last_write, self._error = None, now, error
                self._writing_chars = 0
                if error is not None:
                    self._drop(len(lines))
                elif self._unreported:
                    lost = now - (self._lost_since or now)
                    note, self._unreported, self._lost_since = self._note(self._unreported, lost), 0, None
                    self._pending.insert(0, note)  # written next, before what came after the loss
                    self._pending_chars += len(note) + 1
                self._done += 1
                self._cond.notify_all()

    def _write(self, lines: list[str]) -> str | None:
        """Write the lines; the reason if they could not be (they are then lost)."""
        if self.stream is None:
            return self._error
        text = "\n".join(lines) + "\n"
        try:
            if self._fd is None:  # a stream with no descriptor (a test's StringIO): through it
                self.stream.write(text)
                self.stream.flush()
                return None
            # Straight to the descriptor: a buffered stream's lock, held by a write that waits,
            # would stall interpreter exit (and anyone else printing).
            stdio.write_all(self._fd, text.encode(self._encoding, "backslashreplace"))
        except (OSError, ValueError) as exc:  # a full disk, a reader gone, a closed stream
            return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        return None


def _fd_of(stream: TextIO | None) -> int | None:
    """A descriptor of the sink's own on what ``stream`` writes to: when the stream is closed
    (the dashboard's log file at its exit) its number is reused, and lines written to it then
    would land in whatever file took it."""
    if stream is None:
        return None
    try:
        fd = stream.fileno()
        stream.flush()  # what went through the stream before goes first
        return os.dup(fd)
    except (AttributeError, OSError, ValueError):
        return None
