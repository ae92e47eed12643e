"""`status` tells a daemon that is starting from one that is down (#19).

Real daemons (`reorg-tui --headless` in their own processes), a real 50,000-item quarantine, and
the real `reorg-tui status` command, polled from the moment the daemon's process is started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reorg_tui.bench.quarantine import fill
from reorg_tui.engine.kinds import Phase
from reorg_tui.engine.lock import lock_holder
from reorg_tui.engine.publish import read_state
from reorg_tui.status import check
from tests.conftest import cli, wait_for

PHASES = {str(phase) for phase in Phase}
ITEMS = 50_000


@dataclass(frozen=True)
class Answer:
    asked_at: float  # monotonic, when the question was put
    code: int
    line: str


@pytest.fixture
def root():
    """A tmpfs on a short path (the control socket's path is short): 50,000 items are made in
    seconds there, where the shared disk of a test machine can take a minute."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(folder)]).returncode == 0
    for name in ("src", "dst", "q"):
        (folder / name).mkdir()
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)
    shutil.rmtree(folder, ignore_errors=True)


def _daemon(root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    full_env.update(env or {})
    command = [sys.executable, "-m", "reorg_tui", "--headless", "-s", str(root / "src")]
    command += ["-d", str(root / "dst"), "--quarantine", str(root / "q"), "--state-dir", str(root / "st")]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=full_env
    )


def _status(root: Path, *extra: str) -> Answer:
    asked = time.monotonic()
    result = cli("status", "--state-dir", str(root / "st"), *extra)
    return Answer(asked, result.returncode, result.stdout.strip())


def _published_pid(root: Path) -> int | None:
    data = read_state(root / "st")
    return None if data is None else data.get("pid")


def _watch_a_start(root: Path) -> tuple[subprocess.Popen[str], float, list[Answer], list[Answer]]:
    """Start a daemon and ask `reorg-tui status` (its own process, as monitoring does) over and
    over until the start-up is over; meanwhile a thread asks in this process every 20 ms, and
    notes the moment the daemon holds the source's lock (from /proc/locks: a fact of the process,
    whatever it publishes). Returns the daemon, that moment, and the answers of both."""
    began = time.monotonic()
    proc = _daemon(root)
    held: list[float] = []
    quick: list[Answer] = []
    done = threading.Event()

    def look() -> None:
        while not done.is_set():
            asked = time.monotonic()
            health = check(root / "st")
            quick.append(Answer(asked, health.code, health.line))
            if not held and lock_holder(root / "src") == proc.pid:
                held.append(time.monotonic())
            time.sleep(0.02)

    looker = threading.Thread(target=look, daemon=True)
    looker.start()
    answers: list[Answer] = []
    deadline = began + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            answers.append(_status(root))
            if held and not answers[-1].line.startswith(("starting", "not running")):
                break
    finally:
        done.set()
        looker.join(timeout=5)
    assert proc.poll() is None, "the daemon died while starting"
    assert held, "the daemon never took the source"
    published = next((a.asked_at for a in quick if a.line.startswith(f"starting (pid {proc.pid}")), None)
    print(f"\nsource held {held[0] - began:.2f} s after the process was started", end="")
    print("" if published is None else f", starting published {published - began:.2f} s after")
    return proc, held[0], answers, quick


def _assert_starting_then_up(pid: int, held: float, answers: list[Answer]) -> None:
    """Asked once the daemon held its source, no answer says down; each says starting (exit 1,
    its pid, a phase) until start-up ends. (Asked in the 0.2 s after the lock was seen taken, an
    answer may still find the predecessor's state: the first publication follows the lock by the
    time it takes to make the state folder and bind the control socket.)"""
    after = [a for a in answers if a.asked_at >= held + 0.2]
    assert after, "no answer came once the daemon held its source"
    down = [a for a in after if a.code == 2]
    assert not down, f"said down while the daemon was starting: {down[:3]}"
    starting = [a for a in after if a.line.startswith("starting")]
    for answer in starting:
        assert answer.code == 1, answer
        assert answer.line.startswith(f"starting (pid {pid}, "), answer
        assert answer.line.split(": ", 1)[1] in PHASES, answer
    assert after[-1].code == 1 and after[-1].line.startswith(f"degraded: {ITEMS} file")


def test_a_start_over_50000_quarantined_files_is_starting_not_down_and_so_is_each_restart(root):
    """The issue's case: a start-up that checks a large quarantine (here 50,000 items, indexed
    from their records on the first start, from the ledger at a restart) published nothing until
    it ended, and `status` said "not running" (exit 2) all the while. Now it says starting (exit
    1, with the pid and the phase) from the daemon's first publication on, then the running
    daemon's health. With 50,000 files in the quarantine that health is degraded, not healthy
    (a non-empty quarantine is degraded: test_status_exit_codes_in_each_state); healthy after a
    start-up: the next test."""
    started = time.monotonic()
    fill(root / "q", ITEMS)
    print(f"\n{ITEMS:,} quarantined items made in {time.monotonic() - started:.1f} s")
    for start in ("first start", "restart"):
        proc, held, answers, quick = _watch_a_start(root)
        try:
            _assert_starting_then_up(proc.pid, held, answers)
            _assert_starting_then_up(proc.pid, held, quick)
            assert any(a.line.startswith(f"starting (pid {proc.pid}") for a in answers), (start, answers)
            seen = {a.line.split(": ", 1)[1] for a in quick if a.line.startswith("starting")}
            assert seen, (start, quick)
            if start == "first start":  # what took the time is named: indexing 50,000 records
                assert str(Phase.QUARANTINE) in seen, (start, seen)
            # (At a restart the check reads the ledger's index and borrows each folder once: it can
            # end between two publications, a second apart, so which phase is seen then varies.)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def test_a_stalled_start_up_is_starting_then_stale_and_healthy_once_it_goes_on(root):
    """The daemon stops itself (SIGSTOP) right after its first publication: `status` says it is
    starting, and once it has published nothing for STALE_AFTER seconds (read with the clock put
    forward) it is down. SIGCONT: it starts, and with an empty quarantine it is healthy."""
    proc = _daemon(root, env={"REORG_STOP_AT": "starting:1:pause"})
    try:
        wait_for(lambda: _published_pid(root) == proc.pid, timeout=30, what="the first publication")
        wait_for(lambda: _stopped(proc.pid), what="the daemon to stop itself")
        answer = _status(root)
        assert (answer.code, answer.line.split(": ", 1)[1]) == (1, str(Phase.LEDGER)), answer
        assert answer.line.startswith(f"starting (pid {proc.pid}, ")
        later = check(root / "st", now=time.time() + 11)
        assert later.code == 2, later
        assert later.line.startswith(f"stale: pid {proc.pid} last published ")
        assert later.line.endswith(f" while {Phase.LEDGER}")
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: _status(root).code == 0, timeout=30, what="healthy")
        assert _status(root).line.startswith(f"healthy (pid {proc.pid}): running")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_a_start_up_that_never_ends_is_down_after_the_start_timeout(root):
    """Start-up stuck in one thread for good (the crash-test hook blocks it, as a dead mount would
    in the kernel) while the process lives and goes on publishing: `status` says starting until
    --start-timeout, then down (exit 2), naming the phase. The default bound is START_TIMEOUT."""
    proc = _daemon(root, env={"REORG_STOP_AT": "starting:1:hang"})
    try:
        wait_for(lambda: _published_pid(root) == proc.pid, timeout=30, what="the first publication")
        early = _status(root)  # the default bound, START_TIMEOUT
        assert early.code == 1 and early.line.startswith(f"starting (pid {proc.pid}, "), early
        published = read_state(root / "st")["published_at"]
        wait_for(lambda: read_state(root / "st")["published_at"] > published, what="a fresh publication")
        time.sleep(2.5)
        stuck = _status(root, "--start-timeout", "2")
        assert stuck.code == 2, stuck
        assert stuck.line.startswith(f"start-up stuck: pid {proc.pid} has been starting for "), stuck
        assert stuck.line.endswith(f"s (over --start-timeout 2s), {Phase.LEDGER}"), stuck
        # Still publishing (not stale): the bound, not the silence, says it is down.
        health = check(root / "st")
        assert health.code == 1 and health.age is not None and health.age < 2.5, health
        bad = cli("status", "--state-dir", str(root / "st"), "--start-timeout", "-1")
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    finally:
        proc.kill()
        proc.wait(timeout=30)
