"""The standard descriptors as the process found them, made safe before anything is opened.

A descriptor closed at start (``2>&-``, a careless supervisor) is the lowest free number: the
first file the daemon opens (its lock, its ledger, a socket) would become its stderr, and log
lines would be written into it. So each of 0, 1, 2 found closed is opened on /dev/null first,
and ``closed_at_start`` remembers which were (the log then says it has nowhere to go).

``say`` writes a line to stderr without ever waiting long for it: the one-line error of a
command must not hang on a stderr nobody reads, nor turn into a traceback (or Python's exit
status 120) on one that cannot be written.
"""

from __future__ import annotations

import os
import sys
import threading

closed_at_start: frozenset[int] = frozenset()
SAY_SECONDS = 2.0  # how long a stderr nobody reads may hold up an exit


def guard() -> frozenset[int]:
    """Open /dev/null on each of 0, 1, 2 found closed; returns those (also in closed_at_start)."""
    global closed_at_start
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd, as those below are open
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 2 in closed or sys.stderr is None:  # Python left it None: print(file=None) goes to stdout
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - for the process's life
    if 1 in closed or sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    closed_at_start = closed_at_start | frozenset(closed)
    return closed_at_start


def say(line: str) -> None:
    """Write ``line`` to fd 2, waiting at most SAY_SECONDS; a failure to write is ignored (the
    exit code still tells)."""
    text = line.rstrip("\n") + "\n"
    try:
        fd = sys.stderr.fileno()
        sys.stderr.flush()  # what went through sys.stderr goes first
    except (AttributeError, OSError, ValueError):  # replaced by one with no descriptor (a test's)
        fd = None
    if fd is None:
        try:
            sys.stderr.write(text)
        except (AttributeError, OSError, ValueError):
            pass
        return
    data = text.encode(getattr(sys.stderr, "encoding", None) or "utf-8", "backslashreplace")

    def write() -> None:
        # Straight to the descriptor: a buffered stream's lock, held by a write that waits, would
        # stall the interpreter's exit.
        try:
            write_all(fd, data)
        except OSError:
            pass

    writer = threading.Thread(target=write, name="reorg-say", daemon=True)
    writer.start()
    writer.join(SAY_SECONDS)


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (a pipe may take part of a write); OSError if it cannot."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
