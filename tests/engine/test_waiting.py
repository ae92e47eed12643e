"""Stuck files: the snapshot names the files waiting longest in the source, and why (a writer
that never closes its file, a move that keeps failing, no room); the oldest's age is a metric and
an alert (--alert-pending-age), cleared when the file moves."""

from __future__ import annotations

import os
import threading
import time
import urllib.request

from reorg_tui.engine import events as ev
from tests.conftest import OLD, make_settings, running, wait_for, write


def _writer(path, stop: threading.Event) -> threading.Thread:
    """A writer that never closes its file for long: it appends every 50 ms."""

    def run() -> None:
        while not stop.is_set():
            with open(path, "ab") as f:
                f.write(b"x")
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_file_still_being_written_waits_as_settling_and_raises_the_alert_then_clears(tmp_path):
    settings = make_settings(tmp_path, settle=0.5, alert_pending_age=1.5)
    busy = settings.source / "2024-06-01_growing.log"
    stop = threading.Event()
    write(busy, b"start")
    writer = _writer(busy, stop)
    try:
        with running(settings) as (engine, recorder):
            write(settings.source / "2024-06-02_quiet.dat", b"q", OLD)
            wait_for(
                lambda: (settings.dest / "2024/06/02/2024-06-02_quiet.dat").exists(), what="the quiet file"
            )
            wait_for(lambda: engine.snapshot().waiting, what="the writer's file to be listed")
            first = engine.snapshot().waiting[0]
            assert (first.path, first.why) == ("2024-06-01_growing.log", "settling")
            wait_for(lambda: "pending_age" in engine.snapshot().alert_names, timeout=10, what="the alert")
            [raised] = [a for a in recorder.of(ev.Alert) if a.name == "pending_age" and a.active]
            assert "2024-06-01_growing.log" in raised.message and "settling" in raised.message
            snap = engine.snapshot()
            assert snap.oldest_pending_age >= 1.5
            assert abs(snap.waiting[0].since - first.since) < 1e-6  # since it was first seen, not reset
            stop.set()
            writer.join()
            wait_for(lambda: (settings.dest / "2024/06/01/2024-06-01_growing.log").exists(), what="its move")
            wait_for(lambda: "pending_age" not in engine.snapshot().alert_names, what="the alert to clear")
            assert engine.snapshot().waiting == ()
            assert any(a.name == "pending_age" and not a.active for a in recorder.of(ev.Alert))
    finally:
        stop.set()


def test_a_file_whose_move_keeps_failing_waits_as_retrying_with_its_error(tmp_path, immutable):
    """The destination's day folder made immutable (chattr +i holds for root too): every try
    fails with EPERM, and the file waits as retrying, since its first failure."""
    settings = make_settings(tmp_path, max_retries=50, retry_base_delay=0.2, retry_max_delay=0.2)
    day = settings.dest / "2024/07/01"
    day.mkdir(parents=True)
    immutable(day)
    write(settings.source / "2024-07-01_blocked.dat", b"b", OLD)
    started = time.time()
    with running(settings) as (engine, _):
        wait_for(lambda: any(p.why == "retrying" for p in engine.snapshot().waiting), what="a retry")
        [p] = [p for p in engine.snapshot().waiting if p.path == "2024-07-01_blocked.dat"]
        assert p.why == "retrying" and "attempt" in p.detail
        assert started - 1 <= p.since <= time.time()
        time.sleep(1)  # tried again meanwhile: still the same since
        [again] = [p for p in engine.snapshot().waiting if p.path == "2024-07-01_blocked.dat"]
        assert again.since == p.since


def test_the_oldest_waiting_age_is_served_as_a_metric(tmp_path):
    from reorg_tui.exporter import start_metrics, stop_metrics

    settings = make_settings(tmp_path, settle=3600.0, metrics_port=0)
    write(settings.source / "2024-08-01_new.dat", b"n")  # written now: it settles for an hour
    with running(settings) as (engine, _):
        wait_for(lambda: engine.snapshot().waiting, what="the settling file")
        port = _port()
        server = start_metrics(engine.snapshot, settings.with_(metrics_port=port))
        try:
            time.sleep(1.1)
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        finally:
            stop_metrics(server)
    [line] = [line for line in text.splitlines() if line.startswith("reorg_oldest_pending_age_seconds ")]
    assert float(line.split()[1]) >= 1.0
    assert os.path.exists(settings.source / "2024-08-01_new.dat")


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
