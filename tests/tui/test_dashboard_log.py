"""When the dashboard hosts the engine, its log file holds the moves as the headless log does."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TextIO

from textual.pilot import Pilot

from reorg_tui import logs
from reorg_tui.tui.run import dashboard
from tests.conftest import OLD, make_settings, write
from tests.tui.test_dashboard import drive, engine_started, text_of, until


class Watched:
    """A log file that notes which threads write to it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.writers: set[str] = set()

    def write(self, text: str) -> int:
        self.writers.add(threading.current_thread().name)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def test_the_dashboard_log_holds_every_move_as_the_headless_log_does(tmp_path, own_logging):
    settings = make_settings(tmp_path)
    log_path = settings.state_dir / "dashboard.log"
    names = [f"2025-01-0{i + 1}_logged{i}.txt" for i in range(3)]
    with open(log_path, "a", encoding="utf-8") as log_file:
        watched = Watched(log_file)
        logs.setup("INFO", "text", stream=watched)  # type: ignore[arg-type]  # as run_dashboard does
        app, servers = dashboard(settings)
        assert servers == []  # no --metrics-port

        async def script(pilot: Pilot) -> None:
            await engine_started(pilot, app)
            for name in names:
                write(settings.source / name, b"x", OLD)
            await until(pilot, lambda: "moved 3 files" in text_of(app, "#throughput-text"), "the moves")
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "the dashboard to quit")

        drive(app, script)
        assert watched.writers and threading.main_thread().name not in watched.writers, (
            "the UI thread wrote to the log file"
        )
        logs.flush()
    lines = log_path.read_text(encoding="utf-8").splitlines()
    for i, name in enumerate(names):
        source, dest = settings.source / name, settings.dest / f"2025/01/0{i + 1}" / name
        [line] = [line for line in lines if f" moved {source} -> {dest} (" in line]
        assert " INFO    moved " in line


def test_the_dashboard_serves_metrics_once_its_engine_holds_the_source(tmp_path, own_logging):
    """--metrics-port with the dashboard: no port is bound before the engine holds the source
    (a second instance is told another holds it, not that the port is taken); then /metrics
    answers over HTTP, and quitting lets the port go."""
    import asyncio
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(tmp_path, metrics_port=port)
    logs.setup("INFO", "text", stream=open(settings.state_dir / "dashboard.log", "a"))  # noqa: SIM115
    app, servers = dashboard(settings)
    assert servers == []  # nothing bound yet: the engine has not taken the source

    def scrape() -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await until(pilot, lambda: len(servers) == 1, "the metrics endpoint")
        text = await asyncio.to_thread(scrape)
        assert 'reorg_engine_state{state="running"} 1.0' in text
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the dashboard to quit")

    drive(app, script)
    for close in servers:  # as run_dashboard does on the way out
        close()
    with socket.socket() as again:  # (SO_REUSEADDR: a closed scrape's TIME_WAIT does not count)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))  # no one listens on the port any more


def test_a_log_file_nobody_reads_stops_no_move_and_no_quit(tmp_path, own_logging):
    """dashboard.log is a FIFO that a wedged log shipper holds open and never reads: once the
    pipe is full every write to it waits. The moves go on, the panes keep up, the log's health
    says it is stuck, and q quits at once."""
    settings = make_settings(tmp_path)
    fifo = settings.state_dir / "dashboard.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the shipper: open, never read
    files = 6000  # some 1.2 MiB of lines: more than the pipe (64 KiB) and the queue (1 MiB) hold
    for i in range(files):
        write(settings.source / f"2025-02-{1 + i % 28:02d}_stuck{i:05d}.txt", b"x", OLD)
    try:
        with open(fifo, "a", encoding="utf-8") as log_file:  # as run_dashboard opens it
            logs.setup("INFO", "text", stream=log_file)
            app, _servers = dashboard(settings)

            async def script(pilot: Pilot) -> None:
                await engine_started(pilot, app)
                await until(
                    pilot,
                    lambda: f"moved {files:,} files" in text_of(app, "#throughput-text"),
                    "every move",
                    timeout=90,
                )
                await until(pilot, lambda: not logs.health().writable, "the log to count as stalled")
                assert logs.health().dropped_lines > 0
                started = time.monotonic()
                await pilot.press("q")
                await until(pilot, lambda: not app.is_running, "the dashboard to quit", timeout=10)
                assert time.monotonic() - started < 5

            drive(app, script)
    finally:
        os.close(reader)
    arrived = sum(len(names) for _, _, names in os.walk(settings.dest))
    assert arrived == files and not os.listdir(settings.source)


def test_lines_logged_after_the_log_file_is_closed_never_land_in_a_file_opened_since(tmp_path, own_logging):
    """The sink writes to a descriptor of its own: the number of the closed log file, reused by
    the next file opened, must not receive log lines."""
    log_path, other = tmp_path / "dashboard.log", tmp_path / "ledger.db"
    with open(log_path, "a", encoding="utf-8") as log_file:
        logs.setup("INFO", "text", stream=log_file)
        logs.emit(logging.INFO, "before", "written while open")
        number = log_file.fileno()
    fd = os.open(other, os.O_RDWR | os.O_CREAT)
    try:
        assert fd == number, "the closed log file's number should be the one reused"
        logs.emit(logging.WARNING, "after", "written after the close")
        assert logs._sink is not None and logs._sink.flush()
        assert os.path.getsize(other) == 0
    finally:
        os.close(fd)
    assert "written while open" in log_path.read_text()
