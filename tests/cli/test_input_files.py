"""Files read on a user's word that are not regular files: a FIFO, /dev/zero, a folder, a file over
the cap. Each is one line and exit 2, at once: every run here has a timeout, so a command that
blocks on the FIFO or reads /dev/zero without end fails the test instead of hanging it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reorg_tui.config import MAX_CONFIG_BYTES
from reorg_tui.engine.planfile import MAX_BYTES as MAX_PLAN_BYTES
from tests.conftest import cli, refused, write

QUICK = 20  # seconds: far above a refusal (well under one), far below /dev/zero filling memory


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    return tmp_path


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    return fifo


def _huge(tmp_path: Path, limit: int) -> Path:
    """A sparse file one byte over the cap: its size is real, its blocks are not written."""
    path = tmp_path / "huge"
    with open(path, "wb") as handle:
        handle.truncate(limit + 1)
    return path


# Each command that reads the config file, given it as --config or as REORG_CONFIG.
COMMANDS = {
    "run": ["--once", "-s", "{d}/src", "-d", "{d}/dst"],
    "status": ["status", "-s", "{d}/src"],
    "config supervisord": ["config", "supervisord", "-s", "{d}/src", "-d", "{d}/dst"],
    "quarantine list": ["quarantine", "list", "-d", "{d}/dst"],
}

NOT_REGULAR = {
    "a FIFO": (_fifo, "is a FIFO, not a regular file"),
    "/dev/zero": (lambda _: Path("/dev/zero"), "is a character device, not a regular file"),
    "a folder": (lambda tmp: tmp, "is a folder, not a file"),
    "over the cap": (lambda tmp: _huge(tmp, MAX_CONFIG_BYTES), "over the limit of"),
}


@pytest.mark.parametrize("how", ["--config", "REORG_CONFIG"])
@pytest.mark.parametrize("kind", list(NOT_REGULAR))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_config_that_is_not_a_regular_file_is_one_line_and_exit_2_at_once(dirs, command, kind, how):
    make, fragment = NOT_REGULAR[kind]
    config = make(dirs)
    args = [a.format(d=dirs) for a in COMMANDS[command]]
    env = {}
    if how == "--config":
        args = ["--config", str(config), *args]
    else:
        env["REORG_CONFIG"] = str(config)
    started = time.monotonic()
    result = cli(*args, env=env, timeout=QUICK)
    refused(result, f"config file {config} ", fragment)
    assert time.monotonic() - started < QUICK


def test_a_config_file_at_the_cap_is_read(dirs):
    """The cap refuses only what is over it: a file of exactly MAX_CONFIG_BYTES (padding in a
    comment) is read, and its settings count."""
    body = f'source = "{dirs / "src"}"\ndest = "{dirs / "dst"}"\nworkers = 3\n#'.encode()
    config = write(dirs / "c.toml", body + b"x" * (MAX_CONFIG_BYTES - len(body)))
    assert config.stat().st_size == MAX_CONFIG_BYTES
    printed = cli("config", "supervisord", "--config", str(config), "--workers", "5", timeout=QUICK)
    assert printed.returncode == 0, printed.stderr


PLANS = {
    "a FIFO": (_fifo, "is a FIFO, not a regular file"),
    "/dev/zero": (lambda _: Path("/dev/zero"), "is a character device, not a regular file"),
    "a folder": (lambda tmp: tmp, "is a folder, not a file"),
    "over the cap": (lambda tmp: _huge(tmp, MAX_PLAN_BYTES), "over the limit of"),
}


@pytest.mark.parametrize("kind", list(PLANS))
def test_a_plan_that_is_not_a_regular_file_is_one_line_and_exit_2_at_once(dirs, kind):
    make, fragment = PLANS[kind]
    plan = make(dirs)
    result = cli("apply", str(plan), timeout=QUICK)
    refused(result, f"plan {plan} ", fragment)


def test_status_with_a_fifo_for_its_published_state_answers_at_once(dirs):
    """`status` reads STATE/snapshot.json from the state folder it was told: a FIFO there is no
    published state (not running: exit 2), not a hang."""
    state = dirs / "st"
    state.mkdir()
    os.mkfifo(state / "snapshot.json")
    result = cli("status", "-s", str(dirs / "src"), "--state-dir", str(state), timeout=QUICK)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def test_a_quarantine_record_that_is_a_fifo_is_one_line_not_a_hang(dirs):
    """`quarantine show ID` reads Q/ID.json: a FIFO planted under that name is refused as any
    unreadable record is (one line, exit 4: no such quarantined file); it never blocks."""
    quarantine = dirs / "dst" / "_quarantine"
    quarantine.mkdir()
    os.mkfifo(quarantine / "0123456789abcdef.json")
    result = cli("quarantine", "show", "0123456789abcdef", "-q", str(quarantine), timeout=QUICK)
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "is a FIFO, not a regular file" in line, line
