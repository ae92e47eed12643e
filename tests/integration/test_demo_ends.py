"""`reorg-tui demo` removes its sandbox however it ends (#19).

The real demo, in a real pseudo-terminal (pty.fork: the demo's controlling terminal, as a
terminal emulator gives it), with TMPDIR pointed at a folder of the test so that its sandbox is
found there. Each run waits until the demo has locked its flaky folder (chattr +i as root), the
state that left sandboxes nobody could `rm -rf`, then ends it one way.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reorg_tui import sandbox
from tests.conftest import cli, in_a_terminal, wait_for

FLAKY = Path("dest/2026/01/15")  # the folder the demo locks (demo.py)


def _locked(path: Path) -> bool:
    """chattr +i as root (who ignores modes), else the write bit dropped."""
    if os.geteuid() != 0:
        return not os.stat(path).st_mode & 0o200
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, sandbox.FS_IOC_GETFLAGS, flags, True)
        return bool(flags[0] & 0x10)
    finally:
        os.close(fd)


class Demo:
    """`reorg-tui demo` with a pty; the master end read all along (a full pty blocks the app)."""

    def __init__(self, tmpdir: Path, *extra: str) -> None:
        pid, fd = in_a_terminal("demo", "--rate", "20", "--backlog", "30", *extra, TMPDIR=str(tmpdir))
        self.pid, self.fd, self.tmpdir = pid, fd, tmpdir
        self.output = bytearray()
        self.status: int | None = None
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            try:
                if not select.select([self.fd], [], [], 0.05)[0]:
                    continue
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the demo closed its end
                return
            if not chunk:
                return
            self.output += chunk

    def close_terminal(self) -> None:
        """Close the master end, as a terminal emulator's window closing does. Not while the
        reader is inside read(): a read in progress keeps the file open, and nothing hangs up."""
        self._closing.set()
        self._reader.join(timeout=5)
        os.close(self.fd)
        self.fd = -1

    def sandbox(self) -> Path | None:
        found = [p for p in self.tmpdir.iterdir() if p.name.startswith(sandbox.PREFIX)]
        return found[0] if len(found) == 1 else None

    def wait_until_locked(self) -> Path:
        wait_for(lambda: b"Throughput" in self.output, timeout=60, what="the dashboard")
        wait_for(lambda: self.sandbox() is not None, what="the sandbox")
        root = self.sandbox()
        assert root is not None
        wait_for(lambda: (root / FLAKY).is_dir() and _locked(root / FLAKY), what="the flaky folder locked")
        return root

    def wait(self, timeout: float) -> float:
        """Seconds until the demo exited (fails the test if it has not within ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.status = status
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"the demo did not exit within {timeout}s: {bytes(self.output[-500:])!r}")

    def kill(self) -> None:
        if self.status is None:
            with _suppressed():
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        self._closing.set()
        self._reader.join(timeout=5)
        if self.fd >= 0:
            os.close(self.fd)


class _suppressed:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


@pytest.fixture
def tmpdir_(tmp_path: Path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    yield folder
    subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)  # what a failure left


ENDINGS = {
    "q": lambda demo: os.write(demo.fd, b"q"),
    "ctrl-c": lambda demo: os.write(demo.fd, b"\x03"),
    "sigterm": lambda demo: os.kill(demo.pid, signal.SIGTERM),
    "sighup": lambda demo: os.kill(demo.pid, signal.SIGHUP),
    "terminal closed": lambda demo: demo.close_terminal(),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_the_demo_removes_its_sandbox_however_it_ends(tmpdir_, ending):
    """q, Ctrl-C, SIGTERM, SIGHUP and the terminal closing (its master end closed: the kernel
    hangs up the demo's session) each end the demo within seconds, and its sandbox is gone, the
    folder it had locked included."""
    demo = Demo(tmpdir_)
    try:
        root = demo.wait_until_locked()
        ENDINGS[ending](demo)
        took = demo.wait(timeout=20)
        print(f"\n{ending}: exited {took:.2f} s after")
        assert not root.exists(), f"{ending} left {sorted(p.name for p in root.iterdir())}"
        assert list(tmpdir_.iterdir()) == []
    finally:
        demo.kill()


def test_a_killed_demos_sandbox_is_removed_by_the_next_demo_and_nothing_else(tmpdir_, tmp_path):
    """SIGKILL leaves the sandbox (locked). The next demo removes it, and only what is surely a
    dead demo's: each decoy below is left as it is."""
    demo = Demo(tmpdir_)
    try:
        killed = demo.wait_until_locked()
    finally:
        demo.kill()  # SIGKILL
    assert killed.exists() and _locked(killed / FLAKY)

    me = sandbox._identity(os.getpid())
    reused = tmpdir_ / "reorg-demo-reused"  # its pid lives, but is another process now: stale
    reused.mkdir()
    (reused / sandbox.MARK).write_text(json.dumps({**me, "started": me["started"] - 1}))
    decoys = {
        "reorg-demo-alive": json.dumps(me),  # its demo runs (this process stands for it)
        "reorg-demo-nomark": None,
        "reorg-demo-badmark": "{not json",
        "reorg-demo-pidless": json.dumps({"started": 1}),
        "reorg-demo-strpid": json.dumps({"pid": "1"}),
        "other-thing": json.dumps({"pid": 999_999_999}),  # not our prefix
        "reorg-demo-others": json.dumps({"pid": 999_999_999}),  # another user's folder
    }
    for name, mark in decoys.items():
        (tmpdir_ / name).mkdir()
        if mark is not None:
            (tmpdir_ / name / sandbox.MARK).write_text(mark)
    os.chown(tmpdir_ / "reorg-demo-others", 12345, 12345)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / sandbox.MARK).write_text(json.dumps({"pid": 999_999_999}))
    (tmpdir_ / "reorg-demo-link").symlink_to(target)  # a symlink: never followed, never removed
    (tmpdir_ / "reorg-demo-file").write_text(json.dumps({"pid": 999_999_999}))  # not a folder

    result = cli("demo", "--headless", "--duration", "1", "--backlog", "5", env={"TMPDIR": str(tmpdir_)})
    assert result.returncode == 0, result.stderr[-2000:]
    left = sorted(p.name for p in tmpdir_.iterdir())
    assert left == sorted([*decoys, "reorg-demo-link", "reorg-demo-file"])
    assert (target / sandbox.MARK).exists()
    assert f"removed 2 stale demo sandbox(es) in {tmpdir_}" in result.stderr


def test_a_headless_demo_with_a_duration_stops_at_once_on_sigterm_and_removes_its_sandbox(tmpdir_):
    """``demo --headless --duration`` stops itself when the time is up; a SIGTERM before then
    stops it at once (its timer once held the process until the duration ran out) and the
    sandbox goes as with any other ending."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    env["TMPDIR"] = str(tmpdir_)
    argv = [sys.executable, "-m", "reorg_tui", "demo", "--headless", "--duration", "600", "--backlog", "5"]
    demo = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = demo.stdout.readline() if demo.stdout else ""
        assert line.startswith("demo sandbox: "), line
        root = Path(line.removeprefix("demo sandbox: ").strip())
        wait_for(lambda: _locked(root / FLAKY), timeout=20, what="the demo to lock its flaky folder")
        sent = time.monotonic()
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=20) == 0
        assert time.monotonic() - sent < 15, "the SIGTERMed demo waited for its duration"
        assert not root.exists() and list(tmpdir_.iterdir()) == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
