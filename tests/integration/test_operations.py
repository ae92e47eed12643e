"""Production operations against real processes: metrics over HTTP, status, alerts, deployment files."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reorg_tui import __version__
from reorg_tui.status import check
from tests.conftest import OLD, cli, wait_for, write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + ("" if not sample.labels else json.dumps(sample.labels, sort_keys=True))
            values[key] = sample.value
    return values


def test_metrics_endpoint_counts_what_was_moved(daemon_factory):
    port = free_port()
    d = daemon_factory("--metrics-port", str(port))
    sizes = [100, 2000, 30_000]
    for i, size in enumerate(sizes):
        write(d.src / f"2024-06-0{i + 1}_m{i}.bin", os.urandom(size), OLD)
    write(d.src / "2024-06-31_bad.bin", b"x", OLD)
    wait_for(lambda: scrape(port).get("reorg_files_moved_total") == 3, what="three moves in the metrics")
    m = scrape(port)
    assert m["reorg_moved_bytes_total"] == sum(sizes)
    assert m["reorg_move_duration_seconds_count"] == 3
    assert m['reorg_move_duration_seconds_bucket{"le": "+Inf"}'] == 3
    assert m["reorg_move_duration_seconds_sum"] > 0
    wait_for(lambda: scrape(port).get("reorg_quarantine_files") == 1, what="the quarantine gauge")
    m = scrape(port)
    assert m["reorg_files_quarantined_total"] == 1
    assert m['reorg_engine_state{"state": "running"}'] == 1
    assert m['reorg_engine_state{"state": "paused"}'] == 0
    assert 0 < m["reorg_disk_free_ratio"] <= 1
    assert m['reorg_queue_depth{"queue": "retry"}'] == 0
    code, _ = d.stop()
    assert code == 0


def test_metrics_for_alert_rules_are_there_from_the_first_scrape_and_add_up(daemon_factory):
    port = free_port()
    started = time.time()
    d = daemon_factory(
        "--metrics-port", str(port), "--alert-quarantine-count", "1", "--alert-disk-free-percent", "0"
    )
    first = scrape(port)  # before any file: every series a rule may use is there, at 0
    for reason in ("EIO", "EACCES", "EPERM", "EBUSY", "ENOTDIR", "invalid_date", "collision", "other"):
        assert first[f'reorg_failures_total{{"reason": "{reason}"}}'] == 0, reason
    assert not any("ENOSPC" in key for key in first), "a wait for room is no failure"
    assert first["reorg_move_attempts_total"] == 0
    alerts = {k: v for k, v in first.items() if k.startswith("reorg_alert_active{")}
    assert alerts == {
        'reorg_alert_active{"alert": "error_rate"}': 0,
        'reorg_alert_active{"alert": "quarantine_count"}': 0,
        'reorg_alert_active{"alert": "quarantine_age"}': 0,
        'reorg_alert_active{"alert": "disk_free"}': 0,
        'reorg_alert_active{"alert": "pending_age"}': 0,
    }
    assert first[f'reorg_build_info{{"version": "{__version__}"}}'] == 1
    inodes = os.statvfs(d.dst)
    assert first["reorg_disk_total_inodes"] == inodes.f_files
    assert abs(first["reorg_disk_free_inodes"] - inodes.f_favail) < 1000
    wait_for(lambda: scrape(port)["reorg_last_scan_timestamp_seconds"] > 0, what="a first whole scan")
    assert started < scrape(port)["reorg_last_scan_timestamp_seconds"] <= time.time()

    write(d.dst / "2024/06/01/2024-06-01_taken.txt", b"already here")
    write(d.src / "2024-06-01_taken.txt", b"another", OLD)  # renamed: 2024-06-01_taken (1).txt
    write(d.src / "2024-06-02_fine.txt", b"fine", OLD)
    write(d.src / "2024-06-31_impossible.txt", b"no such day", OLD)  # quarantined at once
    wait_for(
        lambda: scrape(port)['reorg_alert_active{"alert": "quarantine_count"}'] == 1,
        what="the quarantine alert",
    )
    m = scrape(port)
    assert (d.dst / "2024/06/01/2024-06-01_taken (1).txt").read_bytes() == b"another"
    assert (m["reorg_files_moved_total"], m["reorg_files_renamed_total"]) == (2, 1)
    assert m["reorg_move_attempts_total"] == 3
    failures = {k: v for k, v in m.items() if k.startswith("reorg_failures_total{") and v}
    assert failures == {'reorg_failures_total{"reason": "invalid_date"}': 1}
    assert m["reorg_error_ratio"] == pytest.approx(1 / 3)  # as sum(failures) / attempts says
    assert m['reorg_alert_active{"alert": "error_rate"}'] == 0  # 3 attempts are not yet a rate
    assert m["reorg_alerts_active"] == 1  # the disk rule is off here: whatever this disk has free
    code, _ = d.stop()
    assert code == 0


def test_metrics_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (tmp_path / "s").mkdir()
        (tmp_path / "d").mkdir()
        result = cli(
            "--headless",
            "-s",
            str(tmp_path / "s"),
            "-d",
            str(tmp_path / "d"),
            "--metrics-port",
            str(port),
            env={"REORG_STATE_DIR": str(tmp_path / "st")},
        )
    assert result.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr.strip().splitlines()[-1]


def test_status_exit_codes_in_each_state(daemon_factory):
    d = daemon_factory()
    status = lambda: cli("status", "--state-dir", str(d.state), "--json")  # noqa: E731
    healthy = status()
    assert healthy.returncode == 0, healthy.stdout
    assert json.loads(healthy.stdout)["status"] == "healthy"
    write(d.src / "2024-02-30_bad.txt", b"bad", OLD)  # a file in quarantine: degraded
    wait_for(lambda: status().returncode == 1, what="degraded")
    assert "1 file(s) in quarantine" in json.loads(status().stdout)["message"]
    d.proc.kill()  # SIGKILL: the published state stays, the pid is gone
    d.proc.wait()
    down = cli("status", "--state-dir", str(d.state))
    assert down.returncode == 2 and down.stdout.startswith("not running: pid")
    # A live pid that stopped publishing is stale.
    data = json.loads((d.state / "snapshot.json").read_text())
    data.update(pid=os.getpid(), published_at=time.time() - 60)
    (d.state / "snapshot.json").write_text(json.dumps(data))
    stale = cli("status", "--state-dir", str(d.state))
    assert stale.returncode == 2 and stale.stdout.startswith("stale:")
    assert check(d.root / "nowhere").code == 2


def test_status_is_degraded_while_an_operators_pause_leaves_files_waiting(daemon_factory):
    """A forgotten pause moves nothing: `status` says so (exit 1) with its age, until resumed."""
    from reorg_tui.engine.control import request

    d = daemon_factory()
    status = lambda: cli("status", "--state-dir", str(d.state))  # noqa: E731
    assert request(d.state, "pause") == "paused"
    write(d.src / "2024-07-11_held.txt", b"h", OLD)
    wait_for(lambda: status().returncode == 1, what="degraded while paused with a file waiting")
    line = status().stdout.strip()
    assert re.fullmatch(
        r"degraded: paused by an operator (a moment|a second|\d+ seconds) ago, 1 file\(s\) waiting", line
    ), line
    assert request(d.state, "resume") == "running"
    wait_for((d.dst / "2024/07/11/2024-07-11_held.txt").exists, what="the move after resume")
    wait_for(lambda: status().returncode == 0, what="healthy again")


def test_status_finds_a_daemon_with_its_own_state_folder_from_the_source_alone(daemon_factory, tmp_path):
    """The daemon runs with --state-dir: it leaves a pointer in its source's default state folder,
    which `status --source` (and an attaching dashboard, through find_state_dir) follows. A
    pointer that is not the daemon's own is not followed: status then names the pid holding the
    source and what to pass."""
    from reorg_tui.config import default_state_dir, find_state_dir

    d = daemon_factory()
    found = cli("status", "--source", str(d.src))
    assert found.returncode == 0, found.stdout
    assert found.stdout.startswith(f"healthy (pid {d.proc.pid}): running"), found.stdout
    default = default_state_dir(d.src)
    assert find_state_dir(d.src, default) == d.state  # the dashboard's settings carry the default
    assert find_state_dir(d.src, d.root / "given") == d.root / "given"  # one given is used as it is

    pointer = default / "state-dir.json"
    good = pointer.read_text()
    unreachable = (
        f"not reachable: pid {d.proc.pid} holds {d.src} but publishes no state in {default}; "
        "it was started with another --state-dir (or a --config that sets one): pass the same"
    )
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(good)
    hostile = [
        json.dumps({"source": "/srv/other", "state_dir": str(d.state)}),  # another source's
        json.dumps({"source": str(d.src), "state_dir": "st"}),  # relative
        json.dumps({"source": str(d.src), "state_dir": f"{d.root}/x/../st"}),  # not normal
        json.dumps({"source": str(d.src), "state_dir": 7}),
        "{" * 100,
        good + " " * 9000,  # too big to be ours
    ]
    for text in hostile:
        pointer.write_text(text)
        result = cli("status", "--source", str(d.src))
        assert (result.returncode, result.stdout.strip()) == (2, unreachable), text
    pointer.unlink()
    pointer.symlink_to(elsewhere)  # never followed, even to a good pointer
    assert cli("status", "--source", str(d.src)).stdout.strip() == unreachable
    pointer.unlink()
    pointer.write_text(good)
    os.chown(pointer, 12345, 12345)  # another user's file (root may chown; the check is the owner)
    assert cli("status", "--source", str(d.src)).stdout.strip() == unreachable
    os.chown(pointer, os.getuid(), os.getgid())
    assert cli("status", "--source", str(d.src)).returncode == 0
    code, _ = d.stop()
    assert code == 0 and not default.exists()  # nothing left behind in the default state folder


def test_a_release_that_will_fail_again_is_warned_and_the_daemon_logs_who_released_and_deleted(
    daemon_factory,
):
    from reorg_tui.engine.quarantine import QuarantineStore

    d = daemon_factory("--poll-interval", "3600")
    write(d.dst / "2024/07/12", b"a file where the date folder goes")
    write(d.src / "2024-07-12_blocked.txt", b"b", OLD)
    wait_for(lambda: len(QuarantineStore(d.q).list()) == 1, what="the blocked file in the quarantine")
    [record] = QuarantineStore(d.q).list()
    where = ("-q", str(d.q), "-s", str(d.src))
    warned = cli("quarantine", "release", record.id, *where)
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.strip() == (
        f"reorg-tui: warning: {record.id} (2024-07-12_blocked.txt): {d.dst}/2024/07/12 is a file, "
        "not a folder, so it will be quarantined again; move that file aside first"
    )
    wait_for(lambda: [r.id for r in QuarantineStore(d.q).list()] not in ([], [record.id]), what="again")
    (d.dst / "2024/07/12").unlink()  # the cause fixed: released without a warning, and it moves
    fixed = cli("quarantine", "release", "--reason", "not a folder", *where)
    assert fixed.returncode == 0 and fixed.stderr == "", fixed.stderr
    wait_for((d.dst / "2024/07/12/2024-07-12_blocked.txt").exists, what="the move once fixed")
    write(d.src / "2024-02-30_doomed.txt", b"d", OLD)
    wait_for(lambda: len(QuarantineStore(d.q).list()) == 1, what="the impossible date in the quarantine")
    [doomed] = QuarantineStore(d.q).list()
    assert cli("quarantine", "delete", "--all", "--yes", *where).returncode == 0
    code, err = d.stop()
    assert code == 0
    audit = [
        json.loads(line)
        for line in err.splitlines()
        if '"event": "released"' in line or '"event": "deleted"' in line
    ]
    asked_by = rf"asked by uid {os.getuid()} \(pid \d+\)"
    assert [r["event"] for r in audit] == ["released", "released", "deleted"], audit
    back = re.escape(f"released {record.id} from the quarantine to {d.src}/2024-07-12_blocked.txt, ")
    assert re.fullmatch(back + asked_by, audit[0]["message"]), audit[0]
    assert re.fullmatch(
        rf"deleted {doomed.id} \(2024-02-30_doomed.txt\) from the quarantine for good, {asked_by}",
        audit[2]["message"],
    )


def test_status_finds_the_state_from_the_source(tmp_path):
    (tmp_path / "s").mkdir()
    result = cli("status", "-s", str(tmp_path / "s"), env={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert result.returncode == 2
    assert f"no published state in {tmp_path / 'xdg'}/reorg-tui/s-" in result.stdout


def test_an_alert_is_logged_once_and_its_recovery_once(daemon_factory):
    d = daemon_factory("--alert-quarantine-count", "2", "--stats-interval", "0.3")
    write(d.src / "2024-02-30_a.txt", b"a", OLD)
    write(d.src / "2024-02-31_b.txt", b"b", OLD)
    wait_for(lambda: cli("status", "--state-dir", str(d.state)).returncode == 1, what="the alert")
    time.sleep(2.5)  # several evaluations while it stays active
    assert "2 files in quarantine (alert at 2)" in cli("status", "--state-dir", str(d.state)).stdout
    ids = json.loads(cli("quarantine", "list", "-q", str(d.q), "--json").stdout)
    assert cli("quarantine", "delete", ids[0]["id"], "-q", str(d.q), "--yes").returncode == 0
    time.sleep(2.5)
    code, err = d.stop()
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]
    alerts = [r for r in records if r["event"] in ("alert", "alert_recovered")]
    assert [(r["event"], r["alert"]) for r in alerts] == [
        ("alert", "quarantine_count"),
        ("alert_recovered", "quarantine_count"),
    ]


def test_remote_pause_and_resume_through_the_control_socket(daemon_factory):
    from reorg_tui.engine.control import request

    d = daemon_factory()
    sock = d.state / "control.sock"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    assert oct(d.state.stat().st_mode & 0o777) == "0o700"
    assert request(d.state, "pause") == "paused"
    write(d.src / "2024-07-07_held.txt", b"h", OLD)
    time.sleep(1.5)
    assert (d.src / "2024-07-07_held.txt").exists()
    assert request(d.state, "resume") == "running"
    wait_for((d.dst / "2024/07/07/2024-07-07_held.txt").exists, what="the move after resume")


def test_quarantine_list_older_than(tmp_path):
    from reorg_tui.engine.dirs import Tree
    from reorg_tui.engine.quarantine import QuarantineStore

    store = QuarantineStore(tmp_path / "q")
    here = Tree(str(tmp_path))
    write(tmp_path / "2024-01-01_old.txt", b"o")
    write(tmp_path / "2024-01-02_new.txt", b"n")
    old = store.put(here, "2024-01-01_old.txt", reason="r", intended=None, attempts=1, errors=[])
    new = store.put(here, "2024-01-02_new.txt", reason="r", intended=None, attempts=1, errors=[])
    record = json.loads((tmp_path / "q" / f"{old.id}.json").read_text())
    record["quarantined_at"] -= 2 * 86_400
    (tmp_path / "q" / f"{old.id}.json").write_text(json.dumps(record))
    listed = cli("quarantine", "list", "-q", str(tmp_path / "q"), "--older-than", "1d", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [old.id]
    every = cli("quarantine", "list", "-q", str(tmp_path / "q"), "--older-than", "0s", "--json")
    assert {r["id"] for r in json.loads(every.stdout)} == {old.id, new.id}
    bad = cli("quarantine", "list", "-q", str(tmp_path / "q"), "--older-than", "soon")
    assert bad.returncode == 2 and "not an age" in bad.stderr


def test_printed_deployment_files_match_the_flags(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    args = ["-s", str(tmp_path / "s"), "-d", str(tmp_path / "d"), "--workers", "3", "--shutdown-timeout", "7"]
    sup = cli("config", "supervisord", *args, env={"REORG_STATE_DIR": str(tmp_path / "st")})
    assert sup.returncode == 0, sup.stderr
    assert "[program:reorg-tui]" in sup.stdout and "stopsignal=TERM" in sup.stdout
    assert "stopwaitsecs=17" in sup.stdout and "autorestart=true" in sup.stdout
    command = next(line for line in sup.stdout.splitlines() if line.startswith("command="))
    assert (
        f"--source {tmp_path / 's'}" in command
        and "--workers 3" in command
        and "--log-format json" in command
    )
    unit = cli("config", "systemd", *args, env={"REORG_STATE_DIR": str(tmp_path / "st")})
    assert unit.returncode == 0
    for line in (
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=17",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={tmp_path / 's'}",
    ):
        assert line in unit.stdout
    assert cli("config", "systemd").returncode == 2  # no source: the one-line settings error


def test_bench_short_form_verifies_every_file(tmp_path):
    """The benchmark's correctness only (every file arrives, a table is printed): never its speed."""
    result = cli(
        "bench", "--files", "400", "--size", "64", "--dir", str(tmp_path), "--rounds", "2", timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    assert "400 files of 64 B, one filesystem; every file verified" in text
    assert re.search(r"medians of 2 rounds, the ratio in each: \d+\.\d\d, \d+\.\d\d", text), text
    assert "raw rename loop" in result.stdout and "reorg-tui" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "reorg-tui --once" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    # the first move and the drain rate come from the times the engine publishes in its snapshot
    assert cells[4].endswith(" s") and float(cells[4][:-2]) < 30, cells
    assert cells[5].replace(",", "").isdigit(), cells
    assert list(tmp_path.iterdir()) == []  # the workload is removed afterwards


def test_bench_across_filesystems(tmp_path, tmpfs):
    other = tmpfs("other", size="64m")
    result = cli("bench", "--files", "200", "--dir", str(tmp_path), "--cross", str(other), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "across filesystems" in result.stdout and "copy+fsync" in result.stdout


def test_bench_watch_says_when_the_daemon_paused_for_lack_of_room_and_exits_1(tmp_path, tmpfs):
    """A --dir short of inodes: the daemon's disk gate pauses intake (under 10% of the inodes
    free) before the first file has settled, files stay in the source, and the bench gives no
    figure: one line naming the pause, exit code 1, no traceback. With fewer inodes still the
    writer itself fails, and says so the same way."""
    small = tmpfs("small", size="64m", inodes=540)  # 500 files fit; 10% of 540 free does not stay
    result = cli("bench", "--watch", "250", "--seconds", "2", "--dir", str(small), timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr[-2000:])
    [line] = result.stderr.strip().splitlines()
    assert "not moved" in line and "paused intake (intake paused (disk))" in line, line
    tiny = tmpfs("tiny", size="64m", inodes=100)
    result = cli("bench", "--watch", "250", "--seconds", "2", "--dir", str(tiny), timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr[-2000:])
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("reorg-tui: error: bench: the writer stopped: OSError: [Errno 28]"), line


def test_bench_watch_and_idle_modes_report_their_figures(tmp_path):
    watch = cli("bench", "--watch", "200", "--seconds", "2", "--dir", str(tmp_path), timeout=120)
    assert watch.returncode == 0, watch.stderr[-2000:]
    for key in ("files: 400.00", "achieved rate", "p50", "p95", "max"):
        assert key in watch.stdout
    idle = cli("bench", "--idle", "--files", "200", "--seconds", "1", "--dir", str(tmp_path), timeout=120)
    assert idle.returncode == 0, idle.stderr[-2000:]
    assert "percent of a core" in idle.stdout
    assert list(tmp_path.iterdir()) == []


def test_release_and_delete_go_through_the_daemon_running_on_the_source(daemon_factory):
    """With a daemon on the source, `quarantine release` and `delete` ask it to do the work, over
    its control socket: it counts its quarantine again at once, so `status` stops reporting the
    file without waiting for its next full scan (an hour away here). An unknown id is refused by
    the daemon with the same line and exit code 4 as without one."""
    from reorg_tui.engine.quarantine import QuarantineStore

    d = daemon_factory("--poll-interval", "3600", "--on-conflict", "quarantine")
    for name in ("2024-07-08_twice.txt", "2024-07-09_twice.txt"):  # each name taken: quarantined
        write(d.dst / name[:4] / name[5:7] / name[8:10] / name, b"old")
        write(d.src / name, b"new", OLD)

    def quarantined() -> int | None:  # as `status` reads it from the daemon's published snapshot
        snap = check(d.state).snapshot
        return None if snap is None else snap.quarantine.count

    wait_for(lambda: quarantined() == 2, what="both files in the quarantine")
    by_name = {r.name: r.id for r in QuarantineStore(d.q).list()}
    (d.dst / "2024/07/08/2024-07-08_twice.txt").unlink()
    where = ("-q", str(d.q), "-s", str(d.src))
    done = cli("--state-dir", str(d.state), "quarantine", "release", by_name["2024-07-08_twice.txt"], *where)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: (d.dst / "2024/07/08/2024-07-08_twice.txt").read_bytes() == b"new", what="the move")
    wait_for(lambda: quarantined() == 1, timeout=5, what="the daemon to count its quarantine again")
    gone = cli(
        "--state-dir", str(d.state), "quarantine", "delete", by_name["2024-07-09_twice.txt"], "--yes", *where
    )
    assert gone.returncode == 0, gone.stderr
    wait_for(lambda: quarantined() == 0, timeout=5, what="the daemon to count the delete")
    assert not (d.src / "2024-07-09_twice.txt").exists() and QuarantineStore(d.q).list() == []
    unknown = cli("--state-dir", str(d.state), "quarantine", "release", "nope", *where)
    assert (
        unknown.returncode == 4
        and unknown.stderr.strip() == "reorg-tui: error: no quarantined file with id 'nope'"
    )
    code, _ = d.stop()
    assert code == 0


def _command(section: str, key: str) -> list[str]:
    line = next(line for line in section.splitlines() if line.startswith(key))
    return shlex.split(line[len(key) :])


def test_with_a_config_file_the_printed_command_reads_it_so_editing_it_takes_effect(tmp_path):
    src, first, second = (tmp_path / n for n in ("src", "first", "second"))
    for folder in (src, first, second):
        folder.mkdir()
    conf = tmp_path / "reorg.toml"
    conf.write_text(f'source = "{src}"\ndest = "{first}"\nworkers = 3\nstate-dir = "{tmp_path / "st"}"\n')
    for kind, key in (("supervisord", "command="), ("systemd", "ExecStart=")):
        printed = cli("config", kind, "--config", str(conf), "--stats-interval", "5")
        assert printed.returncode == 0, printed.stderr
        argv = _command(printed.stdout, key)
        assert argv[argv.index("--config") + 1] == str(conf)
        assert argv[argv.index("--stats-interval") + 1] == "5.0"  # given besides the file: carried
        for copied in ("--source", "--dest", "--workers", "--state-dir"):
            assert copied not in argv, (kind, argv)
        assert f"settings are read from {conf} at each start" in printed.stdout
    # Edit the file, then run what supervisord would run (--once, so that it ends): the edit counts.
    conf.write_text(conf.read_text().replace(str(first), str(second)))
    write(src / "2024-08-01_edited.txt", b"e", OLD)
    ran = subprocess.run([*argv, "--once", "--settle", "0"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert (second / "2024/08/01/2024-08-01_edited.txt").read_bytes() == b"e"


def test_a_printed_command_names_the_quarantine_only_where_it_was_named(tmp_path):
    """A named quarantine must exist at start: the default one (DEST/_quarantine, made at the
    first start) must not be written out as if it were named, or the first start is refused."""
    src, dst, q = (tmp_path / n for n in ("src", "dst", "q"))
    for folder in (src, dst, q):
        folder.mkdir()
    env = {"REORG_STATE_DIR": str(tmp_path / "st")}
    for kind, key in (("supervisord", "command="), ("systemd", "ExecStart=")):
        argv = _command(cli("config", kind, "-s", str(src), "-d", str(dst), env=env).stdout, key)
        assert "--quarantine" not in argv, (kind, argv)
        named = _command(
            cli("config", kind, "-s", str(src), "-d", str(dst), "--quarantine", str(q), env=env).stdout, key
        )
        assert named[named.index("--quarantine") + 1] == str(q)
    write(src / "2024-02-30_bad.txt", b"no such day", OLD)
    ran = subprocess.run([*argv, "--once", "--settle", "0"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1, ran.stderr  # 1: quarantined, into the default quarantine it made
    assert [p.name for p in (dst / "_quarantine").glob("*/*")] == ["2024-02-30_bad.txt"]


def test_the_systemd_unit_fits_folders_under_tmp_and_home_and_names_its_user(tmp_path, monkeypatch):
    from reorg_tui.config import default_state_dir, load
    from reorg_tui.deploy import Deployment, systemd

    src, dst = tmp_path / "s", tmp_path / "d"
    src.mkdir()
    dst.mkdir()
    args = ["-s", str(src), "-d", str(dst), "--state-dir", str(tmp_path / "st")]
    unit = cli("config", "systemd", *args, "--user", "root")
    assert unit.returncode == 0, unit.stderr
    lines = unit.stdout.splitlines()
    assert "PrivateTmp=yes" not in lines and "User=root" in lines  # a private /tmp would hide them
    [warning] = unit.stderr.strip().splitlines()
    assert (
        warning.startswith("reorg-tui: warning: the unit runs without PrivateTmp=yes:")
        and str(src) in warning
    )
    # The service user's default state folder (under /root) is where it records its --state-dir.
    assert "ProtectHome=read-only" in lines
    writable = next(line for line in lines if line.startswith("ReadWritePaths="))
    assert f" -{default_state_dir(src, '/root')}" in writable
    assert cli("config", "systemd", *args, "--user", "no such").returncode == 2
    assert cli("config", "systemd", *args, "--user", "reorg-nobody-here").returncode == 2

    # Nothing under a home (the interpreter may be: a pyenv build lives in ~; not this one):
    # home folders are hidden altogether.
    settings = load({"source": str(src), "dest": str(dst), "state_dir": str(tmp_path / "st")})
    with monkeypatch.context() as patched:
        patched.setattr(sys, "executable", "/usr/bin/python3")
        unit_text, _ = systemd(Deployment(settings))
    assert "ProtectHome=yes" in unit_text.splitlines()

    try:
        home = Path(tempfile.mkdtemp(prefix="reorg-unit-", dir="/home"))
    except OSError as exc:
        pytest.skip(f"cannot make a folder under /home here: {exc}")
    try:
        (home / "s").mkdir()
        (home / "d").mkdir()
        unit = cli("config", "systemd", "-s", str(home / "s"), "-d", str(home / "d"))
        assert unit.returncode == 0, unit.stderr
        lines = unit.stdout.splitlines()
        assert "ProtectHome=read-only" in lines and "ProtectHome=yes" not in lines  # yes would hide them
        writable = next(line for line in lines if line.startswith("ReadWritePaths="))
        assert str(home / "s") in writable and str(home / "d") in writable
    finally:
        shutil.rmtree(home)


def test_the_printed_unit_passes_systemd_analyze_verify(tmp_path):
    """systemd's own check of what `config systemd` prints: with its settings copied in, and with
    a config file and a User= line."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here: systemd's check of the unit cannot run")
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    conf = tmp_path / "reorg.toml"
    conf.write_text(f'source = "{tmp_path / "s"}"\ndest = "{tmp_path / "d"}"\n')
    for args in (
        ["-s", str(tmp_path / "s"), "-d", str(tmp_path / "d")],
        ["--config", str(conf), "--user", "root"],
    ):
        printed = cli("config", "systemd", *args)
        assert printed.returncode == 0, printed.stderr
        unit = tmp_path / "reorg-tui.service"
        unit.write_text(printed.stdout)
        checked = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
        )
        complaints = [line for line in checked.stderr.splitlines() if str(unit) in line]
        assert checked.returncode == 0 and not complaints, (args, checked.stderr)


def test_bench_dashboard_reports_both_faces_and_the_key_latency(tmp_path):
    """`bench --dashboard`: the real dashboard, then the headless daemon, under one stream rate in
    one run; the figures (never their values) and nothing left behind."""
    result = cli("bench", "--dashboard", "100", "--seconds", "2", "--dir", str(tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    for key in (
        "dashboard: files moved per second",
        "headless: files moved per second",
        "dashboard / headless",
        "refreshes per second",
        "key p95",
    ):
        assert key in result.stdout, result.stdout
    assert list(tmp_path.iterdir()) == []
