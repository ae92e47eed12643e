"""Notifications through Apprise, sent by a real daemon to a real HTTP receiver on 127.0.0.1
(Apprise's json:// scheme): an alert and its recovery, a digest, a stop with files left, a
receiver that is down and one that does not answer; and the URL, a secret, never shown."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under, wait_for, write

SECRET = "tok-3f9c1e77a2"  # in every URL's path: it must never reach a log, status or the snapshot


class Receiver:
    """An HTTP server taking Apprise's JSON posts; ``hold`` keeps each request unanswered until
    ``release`` (a receiver that answers slowly, or not at all)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.holding = threading.Event()
        self.held = threading.Event()  # a request is being held now
        self._released = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if owner.holding.is_set():
                    owner.held.set()
                    owner._released.wait(60)
                owner.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/{SECRET}"

    def hold(self) -> None:
        self.holding.set()

    def release(self) -> None:
        self.holding.clear()
        self._released.set()

    def titled(self, text: str) -> list[dict]:
        return [p for p in self.posts if text in p.get("title", "")]

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bad(src: Path, n: int = 1) -> None:
    for i in range(n):
        write(src / f"2024-02-30_bad{i}.dat", b"no such day", OLD)


def _good(src: Path, n: int) -> dict[str, bytes]:
    made = {}
    for i in range(n):
        name = f"2024-03-{1 + i % 28:02d}_f{i:05d}.dat"
        made[name] = f"file {i}".encode()
        write(src / name, made[name], OLD)
    return made


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


def test_an_alert_and_its_recovery_are_sent_and_the_url_is_never_shown(daemon_factory, receiver):
    d = daemon_factory("--notify", receiver.url, "--alert-quarantine-count", "1")
    _bad(d.src)
    wait_for(lambda: receiver.titled("alert: quarantine"), what="the alert's notification")
    alert = receiver.titled("alert: quarantine")[0]
    assert alert["type"] == "failure"
    assert "1 file(s) in quarantine" in alert["message"] or "quarantine" in alert["message"]
    # Recovery: the operator deletes the quarantined file; the alert clears, and says so.
    shown = cli("quarantine", "list", "--json", "-s", str(d.src), "-q", str(d.q), "--state-dir", str(d.state))
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)
    gone = cli("quarantine", "delete", listed[0]["id"], "--yes", "-s", str(d.src), "-q", str(d.q))
    assert gone.returncode == 0, gone.stderr
    wait_for(lambda: receiver.titled("recovered: quarantine"), timeout=30, what="the recovery's notification")
    assert receiver.titled("recovered: quarantine")[0]["type"] == "success"
    status = cli("status", "--json", "-s", str(d.src), "--state-dir", str(d.state))
    code, err = d.stop()
    assert code == 0, err
    snapshot = (d.state / "snapshot.json").read_text() if (d.state / "snapshot.json").exists() else ""
    _no_secret(err, status.stdout, status.stderr, snapshot)
    assert len(receiver.titled("alert: quarantine")) == 1  # raised once, not at every look


def test_a_receiver_that_is_down_loses_nothing_and_is_logged_once(daemon_factory):
    down = f"json://127.0.0.1:{_free_port()}/{SECRET}"
    d = daemon_factory("--notify", down, "--alert-quarantine-count", "1")
    _bad(d.src)
    made = _good(d.src, 100)  # (the fixture reads the log at the end: under a pipe buffer)
    wait_for(lambda: len(files_under(d.dst)) == len(made), timeout=60, what="every file moved")
    time.sleep(5)  # the sender retries meanwhile (2 s, then 4 s)
    code, err = d.stop()
    assert code == 0, err
    failing = [line for line in err.splitlines() if "could not be sent" in line]
    assert len(failing) == 1, failing  # once a failure run, not once a try
    assert "json://..." in failing[0]
    _no_secret(err)
    assert {Path(p).name for p in files_under(d.dst)} == set(made)


def test_a_receiver_that_does_not_answer_never_holds_a_move(daemon_factory, receiver):
    receiver.hold()  # every request waits until the test lets it go
    d = daemon_factory("--notify", receiver.url, "--alert-quarantine-count", "1")
    _bad(d.src)
    wait_for(receiver.held.is_set, what="the alert's request to reach the receiver")
    made = _good(d.src, 100)  # arrive while the notification is still unanswered
    wait_for(lambda: len(files_under(d.dst)) == len(made), timeout=60, what="every file moved")
    assert receiver.holding.is_set() and not receiver.posts  # the request is still held
    receiver.release()
    wait_for(lambda: receiver.titled("alert: quarantine"), what="the held alert to be answered")
    code, err = d.stop()
    assert code == 0, err


def test_a_digest_replaces_the_events_with_a_summary(daemon_factory, receiver):
    d = daemon_factory("--notify", receiver.url, "--notify-digest", "3s", "--alert-quarantine-count", "1")
    made = _good(d.src, 40)
    _bad(d.src)
    growing, stop = d.src / "2024-05-01_growing.dat", threading.Event()

    def keep_writing() -> None:  # never holds still: the oldest waiting file
        with open(growing, "ab") as f:
            while not stop.wait(0.05):
                f.write(b"x")
                f.flush()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_for(lambda: len(files_under(d.dst)) == len(made), timeout=30, what="every file moved")
        wait_for(lambda: any("moved 40" in p["message"] for p in receiver.titled("summary")), timeout=30,
                 what="a summary saying what moved")  # fmt: skip
        summary = next(p for p in receiver.titled("summary") if "moved 40" in p["message"])
        assert "quarantined 1" in summary["message"]
        assert "oldest waiting: 2024-05-01_growing.dat" in summary["message"], summary["message"]
        assert "(settling)" in summary["message"]
    finally:
        stop.set()
        writer.join()
    assert not receiver.titled("alert:")  # the alert went into the digest, not a message of its own
    code, err = d.stop()
    assert code == 0, err


def test_a_stop_with_files_left_says_so(daemon_factory, receiver):
    d = daemon_factory("--notify", receiver.url)
    for i in range(3):  # written now: they hold still 0.2 s, then move; these are rewritten
        write(d.src / f"2024-04-0{i + 1}_busy.dat", b"x")
    stop_writing = threading.Event()

    def keep_writing() -> None:
        while not stop_writing.is_set():
            for i in range(3):
                with open(d.src / f"2024-04-0{i + 1}_busy.dat", "ab") as f:
                    f.write(b"x")
            time.sleep(0.05)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        time.sleep(1.5)
        code, err = d.stop()
    finally:
        stop_writing.set()
        writer.join()
    assert code == 0, err
    left = receiver.titled("stopped with files left")
    assert left and "3 file(s) not moved" in left[0]["message"], receiver.posts


def test_a_url_apprise_cannot_use_is_refused_in_one_line_without_showing_it(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    r = cli("--headless", "-s", str(src), "-d", str(dst), "--state-dir", str(tmp_path / "st"),
            "--notify", f"nosuchscheme://{SECRET}@host")  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nosuchscheme://..." in r.stderr
    _no_secret(r.stderr, r.stdout)
    r = cli("--headless", "-s", str(src), "-d", str(dst), "--notify-digest", "1x")
    assert r.returncode == 2 and "--notify-digest" in r.stderr and r.stderr.strip().count("\n") == 0


def test_notification_urls_come_from_the_environment_and_the_config_file(tmp_path, receiver):
    """REORG_NOTIFY holds one URL whole (commas and all); the TOML file a list."""
    from reorg_tui.config import load

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    url = receiver.url + "?to=a,b"
    settings = load({"source": str(src), "dest": str(dst)}, env={"REORG_NOTIFY": url})
    assert settings.notify == (url,)
    config = tmp_path / "c.toml"
    config.write_text(f'notify = ["{receiver.url}", "json://127.0.0.1:1/x"]\nnotify-digest = "1h"\n')
    settings = load({"source": str(src), "dest": str(dst)}, env={}, config_file=config)
    assert settings.notify == (receiver.url, "json://127.0.0.1:1/x") and settings.notify_digest == 3600


def test_the_dashboard_hosting_the_engine_notifies_too(tmp_path, receiver):
    """The dashboard's engine sends as the daemon does (the real app, driven by its Pilot), and
    what is queued is sent when it quits."""
    from textual.pilot import Pilot

    from reorg_tui.tui.run import dashboard
    from tests.conftest import make_settings
    from tests.tui.test_dashboard import drive, engine_started, until

    settings = make_settings(tmp_path).with_(notify=(receiver.url,), alert_quarantine_count=1)
    app, closers = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        # the notifications start once the engine holds the source, just after it says "running"
        await until(pilot, lambda: bool(closers), "the notifications to start with the engine")
        _bad(settings.source)
        await until(pilot, lambda: receiver.titled("alert: quarantine"), "the alert's notification")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the dashboard to quit")

    drive(app, script)
    for close in closers:
        close()
    assert receiver.titled("alert: quarantine")[0]["type"] == "failure"


@pytest.mark.needs_root
def test_intake_paused_and_resumed_for_disk_is_sent(tmp_path, tmpfs, receiver):
    """A real 1 MiB tmpfs as the destination: filled under --min-free-percent by a ballast file,
    intake pauses and the notification says so; the ballast removed, it resumes, and says so."""
    import signal
    import subprocess
    import sys

    dest = tmpfs("dest", size="1M")
    src = tmp_path / "src"
    src.mkdir()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("REORG_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", "-s", str(src), "-d", str(dest),
         "--state-dir", str(tmp_path / "st"), "--min-free-percent", "50", "--alert-disk-free-percent", "0",
         "--settle", "0.2", "--poll-interval", "0.3", "--notify", receiver.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        wait_for(lambda: (tmp_path / "st" / "snapshot.json").exists(), what="the daemon to start")
        (dest / "ballast").write_bytes(b"\0" * (700 * 1024))  # 70% used: under 50% free
        write(src / "2024-05-01_waits.dat", b"x", OLD)
        wait_for(lambda: receiver.titled("intake paused"), timeout=30, what="the pause's notification")
        assert receiver.titled("intake paused")[0]["type"] == "warning"
        (dest / "ballast").unlink()
        wait_for(lambda: receiver.titled("intake resumed"), timeout=30, what="the resume's notification")
        wait_for(lambda: (dest / "2024/05/01/2024-05-01_waits.dat").exists(), what="the file to move")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_the_watcher_degrading_to_polling_and_back_is_sent(tmp_path, receiver):
    """The watcher's mode as the engine's snapshot reports it: inotify, then polling (its events
    unavailable: a watch limit reached), then inotify again. Forcing the real degradation would
    mean lowering the machine's inotify limits for every process on it; the snapshot is the
    engine's own, only its ``watcher`` field is set."""
    from dataclasses import replace

    from reorg_tui.engine.engine import Engine
    from reorg_tui.notifications import Notifications
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    base = Engine(settings).snapshot()
    mode = ["inotify"]
    notes = Notifications((receiver.url,), source=str(settings.source),
                          snapshot=lambda: replace(base, watcher=mode[0]))  # fmt: skip
    notes.start()
    try:
        time.sleep(0.5)
        mode[0] = "polling (events unavailable: No space left on device)"
        wait_for(
            lambda: receiver.titled("watcher degraded"), timeout=15, what="the degradation's notification"
        )
        assert "No space left on device" in receiver.titled("watcher degraded")[0]["message"]
        mode[0] = "inotify"
        wait_for(
            lambda: receiver.titled("watcher restored"), timeout=15, what="the restoration's notification"
        )
    finally:
        notes.stop()
    assert len(receiver.titled("watcher degraded")) == 1


def test_printed_deployment_files_never_carry_a_url(tmp_path):
    """A URL given as a flag (or REORG_NOTIFY) is refused for a unit or a supervisord section
    (both readable by every user, and the command line is in every process list); one in the
    config file stays there."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for kind in ("systemd", "supervisord"):
        r = cli("config", kind, "-s", str(src), "-d", str(dst), "--notify", f"json://h/{SECRET}")
        assert r.returncode == 2 and "config file" in r.stderr and r.stdout == ""
        _no_secret(r.stderr)
        r = cli("config", kind, "-s", str(src), "-d", str(dst), env={"REORG_NOTIFY": f"json://h/{SECRET}"})
        assert r.returncode == 2 and r.stdout == ""
    config = tmp_path / "reorg.toml"
    config.write_text(f'notify = ["json://h/{SECRET}"]\n')
    for kind in ("systemd", "supervisord"):
        r = cli(
            "config",
            kind,
            "-s",
            str(src),
            "-d",
            str(dst),
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "st"),
        )
        assert r.returncode == 0, r.stderr
        assert str(config) in r.stdout
        _no_secret(r.stdout, r.stderr)


def test_a_url_that_is_down_never_holds_up_another_and_a_stop_sends_what_is_queued(tmp_path, receiver):
    """Two URLs, one down: every message reaches the other at once (each URL has its own queue
    and backoff), and the stop's own message, sent after the outcome, reaches it too."""
    import dataclasses

    from reorg_tui.engine import events as ev
    from reorg_tui.engine.engine import Engine
    from reorg_tui.engine.metrics import Queues
    from reorg_tui.notifications import Notifications
    from tests.conftest import make_settings

    down = f"json://127.0.0.1:{_free_port()}/{SECRET}"
    notes = Notifications((down, receiver.url), source=str(tmp_path))
    notes.start()
    for i in range(5):
        notes.events([ev.Alert(f"rule{i}", f"message {i}", True)])
    wait_for(lambda: len(receiver.titled("alert: rule")) == 5, timeout=15, what="all five at the healthy URL")
    final = dataclasses.replace(Engine(make_settings(tmp_path)).snapshot(), queues=Queues(settling=2))
    started = time.monotonic()
    notes.stop(final)
    assert time.monotonic() - started < 8  # a stop waits for no URL past its few seconds
    assert receiver.titled("stopped with files left"), receiver.posts
