"""A thread of the engine that dies does not leave the process looking alive: the run stops,
the daemon exits 70 with one line saying which thread died and why, and `status` says so.

The fault is planted for real inside the thread (steps.py: ``REORG_STOP_AT=STEP:N:raise`` in a
daemon process, ``steps.watch`` in this one): the thread under test runs its own loop and dies
of an exception raised in it; nothing stands in for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from reorg_tui.engine import steps
from reorg_tui.engine.control import SOCKET_NAME, request
from reorg_tui.engine.vital import ThreadDied
from reorg_tui.status import DOWN, check
from tests.conftest import OLD, Daemon, cli, make_settings, wait_for, write

THREADS = {"scanning": "reorg-scan", "housekeeping": "reorg-housekeeping", "answering": "reorg-control",
           "journaling": "reorg-journal"}  # fmt: skip


def _provoke(step: str, source, state_dir) -> None:
    """Make the thread behind ``step`` reach it: a connection, a file to rename."""
    if step == "answering":
        try:
            request(state_dir, "ping", timeout=2)
        except Exception:  # noqa: BLE001 - the connection the fault ends: no answer expected
            pass
    elif step == "journaling":
        write(source / "2024-01-01_provoke.txt", b"x", OLD)


@pytest.mark.parametrize("step", list(THREADS))
def test_a_thread_that_dies_in_process_stops_the_run_which_raises_and_publishes_why(tmp_path, step):
    from reorg_tui.engine.engine import Engine

    settings = make_settings(tmp_path)
    engine = Engine(settings)
    stop = threading.Event()
    outcome: list[BaseException | None] = []
    me = THREADS[step]

    def fault(reached: str) -> None:
        if reached == step and threading.current_thread().name == me:
            raise RuntimeError(f"planted in {me}")

    def run() -> None:
        try:
            engine.run(stop)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            outcome.append(exc)

    with steps.watch(fault):
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        wait_for(lambda: engine.snapshot().state != "starting" or outcome, what="the engine to start")
        for _ in range(50):
            if outcome:
                break
            _provoke(step, settings.source, settings.state_dir)
            runner.join(0.2)
        runner.join(15)
    assert not runner.is_alive(), "the run did not stop"
    stop_was_set = stop.is_set()
    [error] = outcome
    assert isinstance(error, ThreadDied) and error.death.thread == me, error
    assert error.exit_code == 70 and stop_was_set
    health = check(settings.state_dir)
    assert health.code == DOWN and f"({me}) died: RuntimeError: planted in {me}" in health.line


@pytest.mark.parametrize("step", list(THREADS))
def test_the_headless_daemon_exits_70_with_one_line_when_a_thread_of_it_dies(step):
    daemon = Daemon()
    try:
        daemon.proc.kill()
        daemon.proc.wait()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("REORG_")}}
        env["REORG_STOP_AT"] = f"{step}:{2 if step in ('scanning', 'housekeeping') else 1}:raise"
        daemon.proc = subprocess.Popen(
            [sys.executable, "-m", "reorg_tui", "--headless", *daemon.args, "--settle", "0.2",
             "--poll-interval", "0.5", "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        wait_for(lambda: os.path.exists(daemon.state / SOCKET_NAME) or daemon.proc.poll() is not None)
        for _ in range(100):
            if daemon.proc.poll() is not None:
                break
            if step == "scanning":
                (daemon.src / "sub").mkdir(exist_ok=True)  # a change in the source: a new listing
                (daemon.src / "sub").rmdir()
            _provoke(step, daemon.src, daemon.state)
            try:
                daemon.proc.wait(0.3)
            except subprocess.TimeoutExpired:
                pass
        out, err = daemon.proc.communicate(timeout=20)
        assert daemon.proc.returncode == 70, err
        lines = [json.loads(line) for line in (out + err).splitlines() if line.strip()]
        died = [r for r in lines if r.get("event") == "thread_died"]
        assert len(died) == 1 and THREADS[step] in died[0]["message"], lines
        assert not [r for r in lines if "Traceback" in json.dumps(r)]
        status = cli("status", "--state-dir", str(daemon.state))
        assert status.returncode == 2 and "died" in status.stdout, status
    finally:
        daemon.cleanup()


def test_a_connection_that_says_nothing_leaves_the_daemon_answering(daemon_factory):
    daemon = daemon_factory()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as quiet:
        quiet.connect(str(daemon.state / SOCKET_NAME))
        for bad in (b"[1]\n", b'"x"\n', b"\xff\n", b"[" * 100_000 + b"\n"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(daemon.state / SOCKET_NAME))
                sock.sendall(bad)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(1000)
        assert request(daemon.state, "ping", timeout=8) == "running"
    code, err = daemon.stop()
    assert code == 0, err
