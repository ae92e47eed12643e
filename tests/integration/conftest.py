"""What the integration tests share: the daemons they start are never left running."""

from __future__ import annotations

import subprocess
import sys

import pytest

STARTED: list[subprocess.Popen[str]] = []  # every daemon a test starts: killed after it if still up


@pytest.fixture(autouse=True)
def _no_stray_daemons():
    """A failing test must not leave its daemon running (and holding files) behind. SIGKILL
    ends one stopped with SIGSTOP too."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_headless(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`reorg-tui --headless ARGS` in its own process (text pipes), killed after the test."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    STARTED.append(proc)
    return proc
