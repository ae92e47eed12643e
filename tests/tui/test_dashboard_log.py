"""When the dashboard hosts the engine, its log file holds the moves as the headless log does."""

from __future__ import annotations

import logging
import threading
from typing import TextIO

import pytest
from textual.pilot import Pilot

from reorg_tui import logs
from reorg_tui.tui.run import dashboard
from tests.conftest import OLD, make_settings, write
from tests.tui.test_dashboard import drive, engine_started, text_of, until


@pytest.fixture
def own_logging(monkeypatch: pytest.MonkeyPatch):
    """The process's logging as it was, after a test that sets it up."""
    monkeypatch.setattr(logs, "_sink", logs._sink)
    monkeypatch.setattr(logs, "_format", logs._format)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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
