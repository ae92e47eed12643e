"""A real supervisord (PyPI `supervisor`) running the printed [program] section over temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under, wait_for, write

BIN = Path(sys.executable).parent


def ctl(conf: Path, *args: str) -> str:
    out = subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(conf), *args], capture_output=True, text=True, timeout=30
    )
    return out.stdout + out.stderr


@pytest.fixture
def supervised(request):
    """A supervisord running the printed section; ``request.param`` (indirect), if given, is
    added to the source's and destination's names."""
    if not (BIN / "supervisord").exists():
        pytest.skip("supervisor is not installed in this environment (it is in the [test] extra)")
    root = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))  # short: supervisord's socket path
    suffix = getattr(request, "param", "")
    src, dst, state = root / f"src{suffix}", root / f"dst{suffix}", root / "st"
    src.mkdir()
    dst.mkdir()
    program = cli(
        "config",
        "supervisord",
        "-s",
        str(src),
        "-d",
        str(dst),
        "--state-dir",
        str(state),
        "--settle",
        "0.2",
        "--poll-interval",
        "0.5",
        "--workers",
        "2",
    )
    assert program.returncode == 0, program.stderr
    conf = root / "supervisord.conf"
    conf.write_text(f"""[supervisord]
nodaemon=true
logfile={root}/supervisord.log
pidfile={root}/supervisord.pid
childlogdir={root}

[unix_http_server]
file={root}/sv.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{root}/sv.sock

{program.stdout}""")
    proc = subprocess.Popen(
        [str(BIN / "supervisord"), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(
            lambda: "RUNNING" in ctl(conf, "status", "reorg-tui"), timeout=30, what="supervisord to start it"
        )
        yield conf, src, dst, state, root
    finally:
        ctl(conf, "shutdown")
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def child_pid(conf: Path) -> int:
    return int(ctl(conf, "pid", "reorg-tui").strip())


def test_supervisord_runs_restarts_and_stops_it_cleanly(supervised):
    conf, src, dst, state, root = supervised
    made = {}
    for i in range(300):
        name = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}_sv{i:04d}.dat"
        made[name] = os.urandom(4096)
        write(src / name, made[name], OLD)
    wait_for(lambda: len(files_under(dst)) >= 100, timeout=30, what="moves under supervisord")

    first = child_pid(conf)
    os.kill(first, signal.SIGKILL)  # a crash: supervisord must restart it
    wait_for(
        lambda: "RUNNING" in ctl(conf, "status", "reorg-tui") and child_pid(conf) not in (0, first),
        timeout=30,
        what="the restart",
    )
    for i in range(300, 350):
        name = f"2024-03-03_sv{i:04d}.dat"
        made[name] = os.urandom(1024)
        write(src / name, made[name])
    wait_for(lambda: not any(src.iterdir()), timeout=60, what="everything to drain after the restart")

    arrived = files_under(dst)
    assert sorted(Path(p).name for p in arrived) == sorted(made)  # each exactly once
    assert not [p for p in arrived if ".reorg-tmp" in p]
    import hashlib

    for rel, digest in arrived.items():
        assert hashlib.sha256(made[Path(rel).name]).hexdigest() == digest

    assert "stopped" in ctl(conf, "stop", "reorg-tui")
    time.sleep(0.5)
    log = (root / "supervisord.log").read_text()
    assert "stopped: reorg-tui (exit status 0)" in log, log[-2000:]
    assert "exited: reorg-tui (terminated by SIGKILL" in log

    captured = (state / "reorg-tui.log").read_text().splitlines()
    assert captured, "supervisord captured no log lines"
    records = [json.loads(line) for line in captured]  # every captured line is one JSON object
    assert sum(r["event"] == "started" for r in records) == 2
    assert records[-1]["event"] == "stopped"


HOSTILE = " 100% ;semi #hash back\\slash 'single' \"double\" $HOME ${HOME} %h"


@pytest.mark.parametrize("supervised", [HOSTILE], indirect=True)
def test_supervisord_runs_it_on_folders_whose_names_mean_something_to_its_file(supervised):
    """Folders named with `%`, ` ;`, ` #`, a backslash, quotes, `$` and `%h`: supervisord loads
    the printed section as one program (no other), runs it, and it moves files from exactly
    that source to exactly that destination (tests/integration/test_deploy_files.py checks the
    argv it reads)."""
    conf, src, dst, state, root = supervised
    assert src.name.endswith(HOSTILE)
    [program] = ctl(conf, "status").strip().splitlines()
    assert program.startswith("reorg-tui ") and "RUNNING" in program
    write(src / "2024-05-06_named.txt", b"through supervisord", OLD)
    wait_for(lambda: (dst / "2024/05/06/2024-05-06_named.txt").exists(), timeout=30, what="the move")
    assert (dst / "2024/05/06/2024-05-06_named.txt").read_bytes() == b"through supervisord"
    assert "stopped" in ctl(conf, "stop", "reorg-tui")
