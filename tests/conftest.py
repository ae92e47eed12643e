from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reorg_tui import logs
from reorg_tui.config import Settings
from reorg_tui.engine import events as ev
from reorg_tui.engine.engine import Engine
from reorg_tui.engine.publish import read_state

# Deterministic clocks in what the dashboard prints (snapshot tests compare pictures).
os.environ["TZ"] = "UTC"
time.tzset()
# Default state folders (and the pointers an instance with --state-dir leaves in its source's
# default one) go to a folder of the test run, inherited by every process it starts, never the
# home of the user running the tests.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="reorg-test-state-")
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], ignore_errors=True)

FAST = dict(
    workers=2,
    settle=0.2,
    poll_interval=0.5,
    retry_base_delay=0.05,
    retry_max_delay=0.2,
    max_retries=3,
    shutdown_timeout=3.0,
)


def make_settings(root: Path, **overrides: object) -> Settings:
    paths = {}
    for name in ("source", "dest", "quarantine", "state_dir"):
        path = overrides.pop(name, None) or root / name  # type: ignore[arg-type]
        Path(path).mkdir(parents=True, exist_ok=True)
        paths[name] = Path(path)
    return Settings(**paths, **{**FAST, **overrides})  # type: ignore[arg-type]


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Recorder:
    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self._lock = threading.Lock()

    def __call__(self, events: list[ev.Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def of(self, kind: type | tuple[type, ...]) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


@contextmanager
def running(settings: Settings, **options: object) -> Iterator[tuple[Engine, Recorder]]:
    """The real engine in a background thread, as the dashboard hosts it (``options``: keywords
    for it, such as a wall clock of the test's)."""
    engine = Engine(settings, **options)  # type: ignore[arg-type]
    recorder = Recorder()
    engine.subscribe(recorder)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            engine.run(stop)
        except BaseException as exc:  # surfaced in the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_for(lambda: engine.snapshot().state != "starting" or errors, what="engine start")
    try:
        yield engine, recorder
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "engine did not stop within 10 s"
    if errors:
        raise errors[0]


def run_once(settings: Settings) -> tuple[Engine, Recorder]:
    engine = Engine(settings)
    recorder = Recorder()
    engine.subscribe(recorder)
    stop = threading.Event()
    timer = threading.Timer(30, stop.set)  # a hang fails the test instead of the suite
    timer.start()
    try:
        engine.run(stop, once=True)
    finally:
        timer.cancel()
    assert not stop.is_set(), "--once did not finish within 30 s"
    return engine, recorder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file below root."""
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                try:
                    out[str(path.relative_to(root))] = digest(path)
                except FileNotFoundError:
                    continue  # moved away while we looked (only while a daemon runs)
    return out


def write(path: Path, data: bytes | str = b"", mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


OLD = time.time() - 3600  # an mtime that makes a file ready at once


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs filesystems (a second filesystem, or a small disk); skip if we cannot."""
    mounted: list[Path] = []

    def mount(name: str = "other", size: str = "64m", inodes: int | None = None) -> Path:
        point = tmp_path / name
        point.mkdir(exist_ok=True)
        opts = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """chattr +i: a write error that holds even for root, who ignores permission bits."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {result.stderr.decode().strip()}")
        marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def unmark(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], check=True)


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw: object
) -> subprocess.CompletedProcess[str]:
    """The real command line, in its own process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reorg_tui", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        **kw,  # type: ignore[arg-type]
    )


def refused(result: subprocess.CompletedProcess[str], *fragments: str, code: int = 2) -> None:
    """A command refused: that exit code, nothing on stdout, one error line holding each fragment."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reorg-tui: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


class Daemon:
    """`reorg-tui --headless` in its own process, on short paths (a unix socket path is short)."""

    def __init__(self, *extra: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        self.src, self.dst, self.q, self.state = (self.root / n for n in ("src", "dst", "q", "st"))
        for p in (self.src, self.dst, self.q):  # a quarantine that is named must exist
            p.mkdir()
        self.args = [
            "-s",
            str(self.src),
            "-d",
            str(self.dst),
            "--quarantine",
            str(self.q),
            "--state-dir",
            str(self.state),
        ]
        self.extra = extra
        self.start()

    def start(self) -> None:
        """Start the daemon (again, after stop: on the same folders, as a supervisor would)."""
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reorg_tui",
                "--headless",
                *self.args,
                "--settle",
                "0.2",
                "--poll-interval",
                "0.5",
                "--log-format",
                "json",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(self.started, what="the daemon to publish its state, started")

    def started(self) -> bool:
        """It published its state, start-up over (it publishes "starting" before that)."""
        data = read_state(self.state) or {}
        return data.get("pid") == self.proc.pid and data["snapshot"].get("state") != "starting"

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["rm", "-rf", str(self.root)])


@pytest.fixture
def daemon_factory():
    made: list[Daemon] = []

    def make(*extra: str) -> Daemon:
        d = Daemon(*extra)
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


def in_a_terminal(*args: str, **env: str) -> tuple[int, int]:
    """``reorg-tui ARGS`` in a real pseudo-terminal of 120x40 (pty.fork: its controlling
    terminal, as a terminal emulator gives it), REORG_ variables cleared and ``env`` added: its
    pid and the master end, which the caller reads all along (a full pty blocks the app)."""
    import fcntl
    import pty
    import struct
    import termios

    environment = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    environment.update(TERM="xterm-256color", COLUMNS="120", LINES="40", **env)
    argv = [sys.executable, "-m", "reorg_tui", *args]
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal the pty's slave end
        try:
            os.execve(sys.executable, argv, environment)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return pid, fd
