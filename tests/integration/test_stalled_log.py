"""The daemon never waits on its own output: a log nobody reads, a log that cannot be written.

Each test starts the real `reorg-tui --headless` with its stderr on something real: a pipe
nobody reads (a wedged log shipper), a pipe that is read later, a pipe with no reader left,
/dev/full, or no stderr at all (fd 2 closed).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under, wait_for, write
from tests.integration.test_operations import free_port, scrape

FILES = 8000  # a pipe holds 64 KiB and the queue 1 MiB: some 5,000 lines of 200 characters


def _count(folder: Path) -> int:
    """Files below ``folder`` (cheap enough to poll: no file is read)."""
    return sum(len(files) for _, _, files in os.walk(folder))


def _backlog(src: Path, n: int) -> dict[str, bytes]:
    made = {}
    for i in range(n):
        name = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}_f{i:05d}.txt"
        data = f"file {i}\n".encode()
        write(src / name, data, OLD)
        made[name] = data
    return made


class Daemon:
    """The headless daemon with stderr on ``stderr`` (a descriptor, or None for fd 2 closed)."""

    def __init__(self, root: Path, stderr: int | None, *extra: str) -> None:
        self.root = root
        self.src, self.dest, self.q, self.state = (root / n for n in ("src", "dst", "q", "state"))
        for p in (self.src, self.dest, self.q):  # a named quarantine must exist
            p.mkdir(exist_ok=True)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
        args = [*self.where(), "--quarantine", str(self.q), "--settle", "0.2", "--poll-interval", "0.5"]
        args += ["--workers", "2", "--metrics-port", str(self.port), *extra]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reorg_tui", "--headless", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
            # fd 2 closed in the child, as `2>&-` in a shell leaves it.
            preexec_fn=(lambda: os.close(2)) if stderr is None else None,
            env=env,
        )

    def where(self) -> list[str]:
        return ["-s", str(self.src), "-d", str(self.dest), "--state-dir", str(self.state)]

    def status(self) -> subprocess.CompletedProcess[str]:
        return cli("status", "-s", str(self.src), "--state-dir", str(self.state))

    def metric(self, name: str) -> float:
        return scrape(self.port)[name]

    def running(self) -> bool:
        try:
            return "reorg_files_moved_total" in scrape(self.port)
        except OSError:
            return False

    def stop(self, within: float = 5.0) -> int:
        """SIGTERM, and how it ended; it must end within ``within`` seconds (supervisord waits
        10 s before its SIGKILL)."""
        self.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = self.proc.wait(timeout=within + 10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        took = time.monotonic() - started
        assert took < within, f"SIGTERM took {took:.1f}s to stop the daemon"
        return code


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(root: Path, stderr: int | None, *extra: str) -> Daemon:
        d = Daemon(root, stderr, *extra)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def _assert_all_moved(made: dict[str, bytes], d: Daemon) -> None:
    arrived = files_under(d.dest)
    assert not files_under(d.src), "files left in the source"
    assert len(arrived) == len(made)
    import hashlib

    for name, data in made.items():
        assert arrived[f"{name[:4]}/{name[5:7]}/{name[8:10]}/{name}"] == hashlib.sha256(data).hexdigest()


def test_an_unread_log_pipe_stops_no_move_degrades_status_and_sigterm_still_stops_it(tmp_path, daemons):
    read_end, write_end = os.pipe()
    try:
        d = daemons(tmp_path, write_end)
        os.close(write_end)
        wait_for(d.running, timeout=20, what="the metrics endpoint")
        made = _backlog(d.src, FILES)
        wait_for(lambda: _count(d.dest) == FILES, timeout=60, what="every file to arrive")
        _assert_all_moved(made, d)
        # Nobody reads: the log is stuck, and says so.
        wait_for(lambda: d.status().returncode == 1, timeout=15, what="status to say degraded")
        status = d.status()
        assert status.stdout.startswith("degraded: ") and "the log cannot be written" in status.stdout, (
            status.stdout
        )
        assert d.metric("reorg_log_lines_dropped_total") > 0
        assert d.metric("reorg_log_stalled") == 1
        # SIGHUP is logged (to the stuck log) and ignored: the daemon goes on moving.
        d.proc.send_signal(signal.SIGHUP)
        write(d.src / "2024-05-06_after_hup.txt", b"after", OLD)
        wait_for((d.dest / "2024/05/06/2024-05-06_after_hup.txt").exists, what="a move after SIGHUP")
        assert d.stop() == 0
    finally:
        os.close(read_end)


def test_once_the_log_is_read_again_one_line_says_how_many_lines_were_dropped(tmp_path, daemons):
    read_end, write_end = os.pipe()
    d = daemons(tmp_path, write_end)
    os.close(write_end)
    wait_for(d.running, timeout=20, what="the metrics endpoint")
    _backlog(d.src, FILES)
    wait_for(lambda: _count(d.dest) == FILES, timeout=60, what="every file to arrive")
    wait_for(lambda: d.status().returncode == 1, timeout=15, what="status to say degraded")
    dropped = d.metric("reorg_log_lines_dropped_total")
    assert dropped > 0

    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read_end, 65536), b"")))
    reader.start()
    try:
        wait_for(lambda: b"dropped" in b"".join(chunks), timeout=15, what="the line on dropped lines")
        wait_for(lambda: d.status().returncode == 0, timeout=15, what="status to say healthy again")
        assert d.metric("reorg_log_stalled") == 0
        assert d.stop() == 0
    finally:
        reader.join(timeout=10)
        os.close(read_end)
    lines = b"".join(chunks).decode().splitlines()
    notes = [line for line in lines if "dropped" in line]
    assert len(notes) == 1, notes
    count = int(re.search(r"WARNING (\d+) log line\(s\) dropped", notes[0]).group(1))  # type: ignore[union-attr]
    assert count >= dropped, (notes, dropped)  # a stats line may have been dropped since
    moved_lines = sum(1 for line in lines if "INFO    moved " in line)
    assert moved_lines + count >= FILES, "a line neither written nor counted as dropped"


@pytest.mark.parametrize(
    "kind",
    ["closed", "dev-full", "no-reader"],
)
def test_whatever_stderr_is_at_start_it_runs_and_status_says_the_log_is_lost(tmp_path, daemons, kind):
    """fd 2 closed (then no file the daemon opens may become its fd 2: log lines would be written
    into it), /dev/full (every write fails: ENOSPC), a pipe with no reader (EPIPE)."""
    opened: list[int] = []
    if kind == "closed":
        stderr = None
    elif kind == "dev-full":
        stderr = os.open("/dev/full", os.O_WRONLY)
        opened.append(stderr)
    else:
        read_end, stderr = os.pipe()
        os.close(read_end)
        opened.append(stderr)
    d = daemons(tmp_path, stderr)
    for fd in opened:
        os.close(fd)
    wait_for(d.running, timeout=20, what="the metrics endpoint")
    made = _backlog(d.src, 200)
    wait_for(lambda: _count(d.dest) == 200, timeout=30, what="every file to arrive")
    _assert_all_moved(made, d)
    wait_for(lambda: d.status().returncode == 1, timeout=15, what="status to say degraded")
    assert "the log cannot be written" in d.status().stdout
    assert d.metric("reorg_log_lines_dropped_total") > 0
    if kind == "closed":
        assert os.readlink(f"/proc/{d.proc.pid}/fd/2") == "/dev/null"
    assert d.stop() == 0


@pytest.mark.parametrize("kind", ["closed", "dev-full", "full-pipe"])
def test_bad_settings_with_no_usable_stderr_still_end_with_exit_code_2(tmp_path, kind):
    """The one line cannot be read, but the exit code is the documented one, not Python's 120
    for a failed flush, nor a traceback's 1; and a pipe already full, that nobody reads, does
    not hold the exit up (the line is given up after 2 s)."""
    args = [sys.executable, "-m", "reorg_tui", "--headless", "-s", str(tmp_path / "missing")]
    args += ["-d", str(tmp_path / "d")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    if kind == "closed":
        run = subprocess.run(args, preexec_fn=lambda: os.close(2), env=env, timeout=30)
    elif kind == "dev-full":
        with open("/dev/full", "w") as full:
            run = subprocess.run(args, stderr=full, env=env, timeout=30)
    else:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        try:
            while True:
                os.write(write_end, b"x" * 4096)
        except BlockingIOError:
            pass  # full
        os.set_blocking(write_end, True)
        try:
            run = subprocess.run(args, stderr=write_end, env=env, timeout=30)
        finally:
            os.close(read_end)
            os.close(write_end)
    assert run.returncode == 2
