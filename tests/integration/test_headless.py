"""The headless daemon as a real process: signals, exit codes, logs, crash and restart."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under, wait_for, write
from tests.integration.conftest import start_headless


def _dirs(tmp_path: Path, dest: Path | None = None) -> tuple[Path, Path, Path]:
    src, q = tmp_path / "src", tmp_path / "q"
    dest = dest or tmp_path / "dst"
    for p in (src, dest, q):  # a quarantine that is named must exist
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


def _start(
    src: Path, dest: Path, q: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REORG_")}, **(env or {})}
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
    return start_headless(args, env)


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


KILL_ROUNDS = int(os.environ.get("REORG_KILL_ROUNDS", "4"))  # `just torture` runs many more


def _mixed_backlog(src: Path, dest: Path, n: int, seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """Files of many sizes (every content unique), some impossible dates (quarantined), and
    some names already taken at their destination (collisions). Returns {sha256: name} of the
    backlog and {sha256: path} of the files already in the destination."""
    rng = random.Random(seed)
    made, existing = {}, {}
    for i in range(n):
        bad = i % 97 == 0
        name = f"2024-{'02-30' if bad else f'{1 + i % 12:02d}-{1 + i % 28:02d}'}_f{i:06d}.bin"
        size = rng.choice([1, 100, 4096, 30_000]) if i % 500 else 1 << 20
        data = (name.encode() * (size // len(name) + 1))[:size] if size > len(name) else name.encode()
        write(src / name, data, OLD)
        made[hashlib.sha256(data).hexdigest()] = name
        if i % 53 == 1:  # a different file already holds this name at the destination
            taken = write(dest / name[:4] / name[5:7] / name[8:10] / name, b"older " + name.encode())
            existing[hashlib.sha256(taken.read_bytes()).hexdigest()] = str(taken.relative_to(dest))
    return made, existing


def _assert_manifest(made: dict[str, str], existing: dict[str, str], src: Path, dest: Path, q: Path) -> None:
    """Every file exactly once across source, destination and quarantine, bytes intact (each
    content is unique, so its sha256 finds it wherever it is); no temporary files anywhere;
    nothing in the destination but the backlog and what was there before."""
    places: dict[str, list[str]] = {}
    for label, root in (("src", src), ("dest", dest), ("q", q)):
        for rel, sha in files_under(root).items():
            if label == "q" and rel.endswith(".json"):
                continue
            assert ".reorg-tmp" not in rel and not rel.endswith(".part"), f"temporary file {rel}"
            places.setdefault(sha, []).append(f"{label}:{rel}")
    for sha, rel in existing.items():
        assert places.pop(sha) == [f"dest:{rel}"], f"an existing file was touched: {rel}"
    for sha, name in made.items():
        where = places.pop(sha, [])
        assert len(where) == 1, (name, where)  # never two places, never none
        label, _, rel = where[0].partition(":")
        if label == "dest":
            folder, _, arrived = rel.rpartition("/")
            assert folder == f"{name[:4]}/{name[5:7]}/{name[8:10]}", rel
            assert arrived == name or arrived == name.replace(".bin", " (1).bin"), rel
        elif label == "q":
            assert "02-30" in name, f"{name} was quarantined"
    assert places == {}, f"files from nowhere: {places}"


@pytest.mark.parametrize("across", [False, True], ids=["one-filesystem", "across-filesystems"])
def test_sigkill_at_random_moments_then_restart_ends_with_every_file_exactly_once(tmp_path, tmpfs, across):
    src, dest, q = _dirs(tmp_path, tmpfs("dest", size="1g") if across else None)
    scale = max(1, KILL_ROUNDS // 4)  # the long form gets a backlog to match its rounds
    made, existing = _mixed_backlog(src, dest, (3000 if across else 20_000) * scale, seed=KILL_ROUNDS)
    rng = random.Random(7)
    interrupted = 0
    for _ in range(KILL_ROUNDS):
        waiting = len(os.listdir(src))
        if not waiting:
            break
        proc = _start(src, dest, q)
        # Kill once moves are under way, at a different moment each round.
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline and len(os.listdir(src)) == waiting:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.5))
        proc.kill()
        proc.wait(timeout=10)
        _assert_manifest_holds_midway(made, existing, src, dest, q)
        interrupted += 0 < len(os.listdir(src)) < waiting
    assert interrupted, "no round was killed in the middle of a drain"
    proc = _start(src, dest, q, "--once")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), err[-3000:]  # 1: impossible dates were quarantined in this run
    assert files_under(src) == {}
    _assert_manifest(made, existing, src, dest, q)


def _assert_manifest_holds_midway(made, existing, src: Path, dest: Path, q: Path) -> None:
    """Right after a SIGKILL, before any recovery: a file may be in two places only as the
    published copy of an interrupted cross-filesystem move (recovery counts it once); it is
    never in none, and nothing at a final name is incomplete."""
    everywhere = set()
    for root in (src, dest, q):
        everywhere.update(sha for rel, sha in files_under(root).items() if ".reorg-tmp" not in rel)
    missing = [name for sha, name in made.items() if sha not in everywhere]
    assert not missing, f"lost or incomplete after SIGKILL: {missing[:5]}"


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


def test_state_files_left_empty_or_corrupt_by_a_crash_are_rebuilt_with_a_warning(tmp_path):
    src, dest, q = _dirs(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    (state / "retry.json").write_bytes(b"")  # a crash between create and write on some filesystems
    (state / "snapshot.json").write_bytes(b"\x00\x00garbage")
    (state / "lock.json").write_text("{")
    (state / ".retry.json.123.456.tmp").write_text("half")  # an interrupted atomic write
    q.mkdir(exist_ok=True)
    write(q / "20240101T000000-deadbeef/2024-01-01_kept.txt", b"kept")
    (q / "20240101T000000-deadbeef.json").write_bytes(b"")  # its record, empty
    write(src / "2024-01-02_new.txt", b"new", OLD)
    result = _once(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "retry queue" in result.stderr and "set aside" in result.stderr
    assert "recovered from an interrupted run" in result.stderr
    assert (dest / "2024/01/02/2024-01-02_new.txt").read_bytes() == b"new"
    assert (state / "retry.corrupt").exists()  # kept for a post-mortem
    assert not (state / "retry.json").exists()  # the queue lives in the ledger now
    assert (state / "ledger.sqlite3").exists()
    assert json.loads((state / "snapshot.json").read_bytes())["snapshot"]["state"] == "stopped"
    assert not list(state.glob(".*.tmp"))
    listed = json.loads(cli("quarantine", "list", "-q", str(q), "--json").stdout)
    assert [(r["name"], r["reason"]) for r in listed] == [
        ("2024-01-01_kept.txt", "found in the quarantine without a record")
    ]
    assert (q / "20240101T000000-deadbeef/2024-01-01_kept.txt").read_bytes() == b"kept"


def _limit_open_files(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_more_date_folders_than_the_open_file_limit_allows_still_all_arrive(tmp_path):
    """The daemon keeps a descriptor open per destination folder in use, as many as the open-file
    limit allows. Here the limit (soft and hard, so it cannot be raised) is far below the 700
    date folders of the backlog: the drain reopens folders, and never fails for want of one."""
    src, dest, q = _dirs(tmp_path)
    made = {}
    for i in range(1400):
        day = datetime.date(2020, 1, 1) + datetime.timedelta(days=i % 700)
        name = f"{day.isoformat()}_f{i:05d}.bin"
        made[name] = f"{i:08d}".encode()
        write(src / name, made[name], OLD)
    args = ["--once", "-s", str(src), "-d", str(dest), "--quarantine", str(q), "--settle", "0"]
    done = cli(
        *args, env={"REORG_STATE_DIR": str(tmp_path / "state")}, preexec_fn=_limit_open_files(128, 128)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Too many open files" not in done.stderr
    _assert_each_file_exactly_once(made, src, dest)
    assert not files_under(src)


def test_the_soft_open_file_limit_is_raised_towards_the_hard_one():
    probe = "from reorg_tui.engine.dirs import raise_open_file_limit as r; import resource as m; "
    probe += "print(r(), m.getrlimit(m.RLIMIT_NOFILE)[0])"
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        preexec_fn=_limit_open_files(256, 4096),
        check=True,
    )
    assert run.stdout.split() == ["4096", "4096"]


def test_a_second_instance_with_the_same_metrics_port_is_refused_for_the_source_not_the_port(tmp_path):
    """The lock is taken before any port is bound: the second instance is told the source is
    taken (exit 3), in one line, and never claims to be watching."""
    from tests.integration.test_operations import free_port, scrape

    src, dest, q = _dirs(tmp_path)
    port = free_port()
    first = _start(src, dest, q, "--metrics-port", str(port))
    wait_for(lambda: _answers(port, scrape), what="the first instance's metrics endpoint")
    second = cli(
        "--headless",
        *("-s", str(src), "-d", str(dest), "--quarantine", str(q)),
        *("--state-dir", str(tmp_path / "other"), "--metrics-port", str(port)),
    )
    assert second.returncode == 3, second.stderr
    [line] = second.stderr.strip().splitlines()
    assert line.endswith(f"ERROR   another reorg-tui instance (pid {first.pid}) is already processing {src}")
    assert _answers(port, scrape), "the first instance's endpoint still serves"
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=10)
    assert first.returncode == 0
    assert err.count("INFO    watching ") == 1


def _answers(port: int, scrape: Callable[[int], dict[str, float]]) -> bool:
    try:
        return "reorg_files_moved_total" in scrape(port)
    except OSError:
        return False


def test_sighup_reloads_and_never_ends_the_daemon(tmp_path):
    """SIGHUP is a reload (reload.py): the daemon goes on moving, and says what changed (here:
    nothing, the same settings read again)."""
    src, dest, q = _dirs(tmp_path)
    proc = _start(src, dest, q)
    wait_for((tmp_path / "state" / "snapshot.json").exists, what="the daemon to run")
    proc.send_signal(signal.SIGHUP)
    write(src / "2024-03-05_after_hup.txt", b"still here", OLD)
    wait_for((dest / "2024/03/05/2024-03-05_after_hup.txt").exists, what="a move after SIGHUP")
    assert proc.poll() is None, "SIGHUP ended the daemon"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert [line for line in err.splitlines() if "SIGHUP" in line][0].endswith(
        "INFO    SIGHUP received: reloading the settings"
    ), err
    assert any(line.endswith("INFO    reload: nothing changed") for line in err.splitlines()), err


def test_under_systemd_it_says_ready_once_running_feeds_the_watchdog_and_says_stopping(tmp_path):
    """A real unix datagram socket stands in for systemd's NOTIFY_SOCKET."""
    import socket

    src, dest, q = _dirs(tmp_path)
    listen = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = tempfile.mktemp(prefix="rt-notify-", dir="/tmp")  # a short path: sun_path is small
    listen.bind(address)
    listen.settimeout(10)
    try:
        env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}  # fed every 0.1 s
        proc = _start(src, dest, q, env=env)
        first = listen.recv(4096).decode().splitlines()
        assert first[0] == "READY=1" and first[1] == f"STATUS=watching {src}", first
        assert (tmp_path / "state" / "lock.json").exists()  # ready only once the source is held
        fed = [listen.recv(4096) for _ in range(5)]
        assert set(fed) == {b"WATCHDOG=1"}
        proc.send_signal(signal.SIGTERM)
        while (message := listen.recv(4096)) == b"WATCHDOG=1":
            pass
        assert message == b"STOPPING=1"
        proc.communicate(timeout=10)
        assert proc.returncode == 0
    finally:
        listen.close()
        os.unlink(address)
