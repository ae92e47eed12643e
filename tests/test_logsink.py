"""The log sink on a real pipe: no thread that logs waits on it; what it cannot take is counted."""

from __future__ import annotations

import json
import logging
import os
import select
import threading

import pytest

from reorg_tui import logs
from reorg_tui.logsink import Sink
from tests.conftest import wait_for


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    ends = {"read": read_end, "write": write_end}
    yield ends
    for fd in ends.values():
        try:
            os.close(fd)
        except OSError:
            pass


def _in_thread(work, within: float = 10.0) -> None:
    """Run ``work`` in a thread that must end (a thread stuck on the log would not)."""
    done = threading.Event()
    thread = threading.Thread(target=lambda: (work(), done.set()), daemon=True)
    thread.start()
    assert done.wait(within), "a thread that logs waited on the log"


def test_a_full_pipe_holds_up_no_writer_bounds_the_queue_and_counts_what_it_drops(pipe):
    with os.fdopen(os.dup(pipe["write"]), "w") as stream:
        sink = Sink(stream, lambda n, s: f"dropped {n}")
        sink.STALLED_AFTER = 0.2  # type: ignore[misc]  # this test need not wait 2 s
        line = "x" * 199
        lines = 3 * Sink.MAX_PENDING_CHARS // 200  # three times what the queue may hold

        _in_thread(lambda: [sink.write(line, urgent=True) for _ in range(lines)])
        assert sink._pending_chars + sink._writing_chars <= Sink.MAX_PENDING_CHARS
        wait_for(lambda: sink.health().stalled_seconds > 0, what="the log to count as stalled")
        health = sink.health()
        assert not health.writable and health.error is None
        assert health.dropped_lines >= lines - Sink.MAX_PENDING_CHARS // 200 - 65536 // 200
        assert sink.flush(timeout=0.2) is False  # a stop does not wait for it


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_once_the_pipe_is_read_one_line_says_how_many_were_dropped(pipe, own_logging, fmt):
    with os.fdopen(os.dup(pipe["write"]), "w") as stream:
        logs.setup("INFO", fmt, stream=stream)
        sink = logs._sink
        assert sink is not None

        def flood() -> None:
            for i in range(2 * Sink.MAX_PENDING_CHARS // 100):
                logs.emit(logging.INFO, "line", "line %d %s", i, "y" * 150)

        _in_thread(flood, within=60)
        dropped = logs.health().dropped_lines
        assert dropped > 0
        read: list[bytes] = []
        done = threading.Event()

        def drain() -> None:  # the reader, at last (until told to stop: the sink holds the pipe open)
            while not done.is_set():
                if select.select([pipe["read"]], [], [], 0.05)[0]:
                    read.append(os.read(pipe["read"], 65536))

        reader = threading.Thread(target=drain)
        reader.start()
        try:
            # A flush gives up on a write that has lagged: it is tried until the log has caught up.
            wait_for(sink.flush, what="the queue to be written")
            logs.emit(logging.INFO, "after", "after the loss")
            wait_for(sink.flush, what="the last line to be written")
            assert logs.health().writable
            wait_for(lambda: b"after the loss" in b"".join(read), what="the last line")
        finally:
            done.set()
            reader.join(timeout=10)
    lines = b"".join(read).decode().splitlines()
    notes = [line for line in lines if "log line(s) dropped" in line]
    assert len(notes) == 1, notes
    if fmt == "json":
        note = json.loads(notes[0])
        assert note["event"] == "log_dropped" and note["level"] == "warning"
        assert note["dropped"] == dropped
    else:
        assert f" WARNING {dropped} log line(s) dropped: the log could not be written for " in notes[0]
    assert lines.index(notes[0]) < len(lines) - 1 and "after the loss" in lines[-1]
