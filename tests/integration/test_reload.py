"""Live reload of a real daemon (SIGHUP, and `reorg-tui reload` through its control socket) under
a stream of files: what can change applies at once, what cannot is refused in one line each and
kept, an alert already raised is not raised again, and every file ends in exactly one place."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from reorg_tui.engine.publish import read_state
from tests.conftest import OLD, cli, wait_for, write


class Daemon:
    def __init__(self, root: Path, config: Path) -> None:
        self.src, self.dst, self.q, self.state = (root / n for n in ("src", "dst", "q", "st"))
        for p in (self.src, self.dst, self.q):
            p.mkdir()
        self.log = root / "daemon.log"
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - the daemon's stderr while it runs
        env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
        args = [
            "-s",
            str(self.src),
            "-d",
            str(self.dst),
            "--quarantine",
            str(self.q),
            "--state-dir",
            str(self.state),
        ]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reorg_tui",
                "--headless",
                *args,
                "--config",
                str(config),
                "--log-format",
                "json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,  # a file: every line kept, none dropped for a slow reader
            env=env,
        )
        wait_for(lambda: (read_state(self.state) or {}).get("snapshot", {}).get("state") == "running",
                 timeout=30, what="the daemon to run")  # fmt: skip

    def lines(self) -> list[dict]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines() if line.get("event") == name]


def _manifest(*roots: Path) -> dict[str, int]:
    seen: dict[str, int] = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                if name.endswith(".json") and root.name == "q":
                    continue  # a quarantined file's record
                digest = hashlib.sha256(Path(folder, name).read_bytes()).hexdigest()
                seen[digest] = seen.get(digest, 0) + 1
    return seen


def test_a_reload_under_a_stream_applies_what_can_change_refuses_the_rest_and_loses_nothing(tmp_path):
    config = tmp_path / "reorg.toml"
    config.write_text("settle = 0.2\npoll-interval = 0.5\nworkers = 2\nalert-quarantine-count = 1\n")
    d = Daemon(tmp_path, config)
    made: dict[str, int] = {}
    stop = threading.Event()

    def stream() -> None:
        i = 0
        while not stop.is_set():
            data = f"file {i} of the stream".encode()
            write(d.src / f"2024-03-{1 + i % 28:02d}_s{i:05d}.dat", data, OLD)
            made[hashlib.sha256(data).hexdigest()] = 1
            i += 1
            time.sleep(0.005)

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        write(d.src / "2024-02-30_bad.dat", b"no such day", OLD)  # quarantined: the alert is raised
        wait_for(lambda: d.events("alert"), timeout=20, what="the quarantine alert")
        time.sleep(0.5)
        config.write_text(
            "settle = 0.4\npoll-interval = 0.3\nworkers = 4\nalert-quarantine-count = 1\n"
            'ignore = ".*,*.skip"\nlayout = "{year}/{month}"\n'
        )
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.events("reloaded"), timeout=20, what="the reload's line")
        write(d.src / "2024-04-01_later.skip", b"ignored from now on", OLD)
        config.write_text("settle = 0.4\npoll-interval = 0.3\nworkers = nope\n")  # a bad edit
        refused = cli("reload", "-s", str(d.src), "--state-dir", str(d.state))
        assert refused.returncode == 0 and "reload refused" in refused.stdout, refused
        config.write_text('settle = 0.4\npoll-interval = 0.3\nworkers = 3\nalert-quarantine-count = 1\n'
                          'ignore = ".*,*.skip"\nlog-level = "DEBUG"\n')  # fmt: skip
        again = cli("reload", "-s", str(d.src), "--state-dir", str(d.state))
        assert again.returncode == 0, again.stderr
        assert "--workers 4 -> 3" in again.stdout and "--layout" not in again.stdout, again.stdout
        assert "--log-level" in again.stdout, again.stdout  # a face's setting with the engine's
        time.sleep(1)
    finally:
        stop.set()
        writer.join()
    wait_for(lambda: not [p for p in d.src.iterdir() if not p.name.endswith(".skip")], timeout=60,
             what="every streamed file to move")  # fmt: skip
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=20) == 0

    [first, *_] = d.events("reloaded")
    for part in ("--workers 2 -> 4", "--settle 0.2 -> 0.4", "--poll-interval 0.5 -> 0.3", "--ignore"):
        assert part in first["message"], first["message"]
    [kept] = [k for k in d.events("reload_kept") if "--layout" in k["message"]]
    assert "cannot change while running" in kept["message"]
    assert d.events("reload_refused")  # the bad edit: nothing changed
    assert len(d.events("alert")) == 1, "a reload raised the alert again"
    # Every streamed file exactly once, at the layout it started with (the new one was refused).
    assert _manifest(d.dst) == made
    assert all(len(p.relative_to(d.dst).parts) == 4 for p in d.dst.rglob("*.dat"))  # YYYY/MM/DD/name
    assert (d.src / "2024-04-01_later.skip").read_bytes() == b"ignored from now on"
    assert len(list(d.q.glob("*/2024-02-30_bad.dat"))) == 1


def test_reload_says_why_when_no_daemon_can_reload(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    r = cli("reload", "-s", str(src), "--state-dir", str(tmp_path / "st"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot reach" in r.stderr


def test_the_printed_unit_reloads_with_sighup_and_the_supervisord_section_says_how(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    unit = cli("config", "systemd", "-s", str(src), "-d", str(dst), "--state-dir", str(tmp_path / "st"))
    assert unit.returncode == 0, unit.stderr
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit.stdout.splitlines()
    section = cli(
        "config", "supervisord", "-s", str(src), "-d", str(dst), "--state-dir", str(tmp_path / "st")
    )
    assert section.returncode == 0, section.stderr
    assert "supervisorctl signal HUP reorg-tui" in section.stdout
