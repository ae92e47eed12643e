"""The headless daemon as a real process: signals, exit codes, logs, crash and restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under, wait_for, write


def _dirs(tmp_path: Path, dest: Path | None = None) -> tuple[Path, Path, Path]:
    src, q = tmp_path / "src", tmp_path / "q"
    dest = dest or tmp_path / "dst"
    for p in (src, dest):
        p.mkdir(exist_ok=True)
    return src, dest, q


def _backlog(src: Path, n: int, size: int = 2000) -> dict[str, bytes]:
    made = {}
    for i in range(n):
        name = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}_f{i:05d}.bin"
        data = (f"{i:08d}".encode() * (size // 8 + 1))[:size]
        write(src / name, data, OLD)
        made[name] = data
    return made


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_stray_daemons():
    """A failing test must not leave its daemon running (and holding files) behind."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(src: Path, dest: Path, q: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    env["REORG_STATE_DIR"] = str(src.parent / "state")
    args = [
        "-s",
        str(src),
        "-d",
        str(dest),
        "--quarantine",
        str(q),
        "--settle",
        "0.2",
        "--poll-interval",
        "0.5",
    ]
    args += ["--workers", "2", "--batch-size", "16", *extra]
    proc = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _started.append(proc)
    return proc


def _assert_each_file_exactly_once(made: dict[str, bytes], src: Path, dest: Path) -> None:
    """Every file in exactly one place, bytes intact, nothing half-moved, no temporary files."""
    left = files_under(src)
    arrived = files_under(dest)
    assert not [p for p in arrived if ".reorg-tmp" in p], "temporary files left behind"
    by_name_dest = {Path(p).name: p for p in arrived}
    assert len(by_name_dest) == len(arrived), "a file arrived twice"
    import hashlib

    for name, data in made.items():
        want = hashlib.sha256(data).hexdigest()
        places = [p for p in (name in left and "src", name in by_name_dest and "dest") if p]
        assert len(places) == 1, (name, places)
        got = left.get(name) or arrived[by_name_dest[name]]
        assert got == want, name
        if name in by_name_dest:
            assert by_name_dest[name] == f"{name[:4]}/{name[5:7]}/{name[8:10]}/{name}"


def test_sigterm_under_load_exits_0_with_nothing_half_moved(tmp_path, tmpfs):
    src, dest, q = _dirs(tmp_path, tmpfs("dest", size="512m"))
    made = _backlog(src, 3000, size=20_000)  # across filesystems: copies are in flight
    proc = _start(src, dest, q)
    wait_for(lambda: len(files_under(dest)) > 100, timeout=30, what="moves to start")
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 5, "a stop must finish well inside supervisord's 10 s"
    assert "SIGTERM received" in err
    _assert_each_file_exactly_once(made, src, dest)
    assert files_under(src), "the backlog should not have finished before the signal"


def test_sigkill_then_restart_ends_with_every_file_exactly_once(tmp_path, tmpfs):
    src, dest, q = _dirs(tmp_path, tmpfs("dest", size="512m"))
    made = _backlog(src, 2000, size=30_000)
    for round_ in range(4):
        proc = _start(src, dest, q)
        time.sleep(0.6 + 0.25 * round_)  # kill at a different point of the drain each round
        proc.kill()
        proc.wait(timeout=10)
    proc = _start(src, dest, q, "--once")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert files_under(src) == {}
    _assert_each_file_exactly_once(made, src, dest)


def _once(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    src, dest, q = _dirs(tmp_path)
    args = ["--once", "-s", str(src), "-d", str(dest), "--quarantine", str(q), "--settle", "0", *extra]
    return cli(*args, env={"REORG_STATE_DIR": str(tmp_path / "state")})


def test_once_exit_code_says_whether_anything_was_quarantined(tmp_path):
    src, _, _ = _dirs(tmp_path)
    write(src / "2024-01-01_fine.txt", b"ok", OLD)
    ok = _once(tmp_path)
    assert ok.returncode == 0, ok.stderr
    write(src / "2024-02-31_bad.txt", b"no", OLD)
    bad = _once(tmp_path)
    assert bad.returncode == 1
    assert "quarantined" in bad.stderr and "2024-02-31 is not a real date" in bad.stderr


def test_a_second_instance_refuses_and_the_first_is_unaffected(tmp_path):
    src, dest, q = _dirs(tmp_path)
    first = _start(src, dest, q, "--stats-interval", "0.2")
    try:
        wait_for(lambda: (tmp_path / "state" / "lock.json").exists(), what="the first instance")
        second = cli("--headless", "-s", str(src), "-d", str(dest), "--state-dir", str(tmp_path / "other"))
        assert second.returncode == 3
        assert f"another reorg-tui instance (pid {first.pid}) is already processing {src}" in second.stderr
        write(src / "2024-03-03_after.txt", b"still working")
        wait_for((dest / "2024/03/03/2024-03-03_after.txt").exists, what="the first to keep working")
        time.sleep(0.5)  # long enough for a few --stats-interval summaries
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=10)
    assert first.returncode == 0
    assert err.count("running: moved") >= 2, "a summary line every --stats-interval"


def test_json_logs_are_one_object_a_line_and_names_cannot_forge_lines(tmp_path):
    src, dest, q = _dirs(tmp_path)
    hostile = "2024-04-04_evil\n2024-01-01T00:00:00Z ERROR forged \x1b[31m[bold]x[@click=app.quit].txt"
    write(src / hostile, b"evil", OLD)
    write(src / "2024-04-04_plain.txt", b"plain", OLD)
    result = _once(tmp_path, "--log-format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line parses
    moved = [r for r in records if r["event"] == "moved"]
    assert len(moved) == 2
    for r in moved:
        assert {"time", "level", "file", "destination", "bytes", "duration"} <= set(r)
        assert "\n" not in r["file"] and "\x1b" not in r["file"]
    assert any("\\x0a" in r["file"] and "\\x1b" in r["file"] for r in moved)
    assert (dest / "2024/04/04" / hostile).read_bytes() == b"evil"  # delivered with its exact name
    assert records[-1]["event"] == "stopped" and records[-1]["moved"] == 2


def test_engine_and_headless_never_import_textual():
    code = (
        "import sys, reorg_tui.headless, reorg_tui.engine.engine, reorg_tui.cli; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_demo_runs_on_its_own_sandbox(tmp_path):
    result = cli(
        "demo",
        "--headless",
        "--dir",
        str(tmp_path / "demo"),
        "--duration",
        "4",
        "--backlog",
        "60",
        "--rate",
        "20",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    moved = list((tmp_path / "demo/dest").rglob("*.txt"))
    assert len(moved) > 40
    assert list((tmp_path / "demo/quarantine").glob("*.json")), (
        "the demo's troublemakers reach the quarantine"
    )
    assert "moved" in result.stderr


def test_readme_demo_command_opens_the_dashboard_in_a_terminal(tmp_path):
    """The README's first command, in a real pseudo-terminal (util-linux `script` provides it)."""
    import shutil

    if shutil.which("script") is None:
        pytest.skip("util-linux `script` is not installed: no pseudo-terminal to run the dashboard in")
    command = f"{sys.executable} -m reorg_tui demo --dir {tmp_path / 'demo'} --duration 4 --rate 20"
    result = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:]
    assert b"Throughput" in result.stdout and b"Retry queue" in result.stdout
    assert list((tmp_path / "demo/dest").rglob("*.txt")), "the demo moved files"
    assert list((tmp_path / "demo/quarantine").glob("*.json")), "the troublemakers reached the quarantine"


def test_screenshot_script_draws_the_dashboard(tmp_path):
    from reorg_tui.tui.screenshots import SHOTS, main

    assert main(str(tmp_path)) == 0
    for name, *_ in SHOTS:
        svg = (tmp_path / name).read_text()
        assert svg.startswith("<svg") and "Quarantine" in svg
    assert "Quarantined&#160;file" in (tmp_path / "quarantine-details.svg").read_text()
