"""A fleet of real daemons on one source, coordinated by a real PostgreSQL: every file in exactly
one place, each moved by one instance, through a lister's death, a stall past the lease, and the
database going away and coming back."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import psycopg

from tests.conftest import OLD, cli, files_under, wait_for, write
from tests.fleet.conftest import Daemons

FOLDERS = 8  # source subfolders (--recursive): claims spread over them


def make_files(source: Path, start: int, count: int, mtime: float | None = OLD) -> dict[str, str]:
    """``count`` files with unique names across the subfolders; name -> sha256."""
    made = {}
    for i in range(start, start + count):
        name = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}_f{i:06d}.bin"
        data = f"{i:08d}".encode() * (1 + i % 50)
        write(source / f"in{i % FOLDERS}" / name, data, mtime)
        made[name] = hashlib.sha256(data).hexdigest()
    return made


def rows(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM reorg_files GROUP BY state").fetchall())


def table(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, rel, state, fence, owner, finished_by, target FROM reorg_files ORDER BY id"
        ).fetchall()


def instances(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM reorg_instances").fetchone()[0]  # type: ignore[index,no-any-return]


def lister_pid(url: str) -> int | None:
    """The pid of the instance holding the lister's advisory lock now (its session's name)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'reorg-tui lister %'"
        ).fetchone()
    return None if row is None else int(row[0].rpartition(" ")[2])


def files_in_source(fleet: Daemons) -> int:
    return sum(len(names) for _, _, names in os.walk(fleet.source))


def assert_each_file_once(fleet: Daemons, made: dict[str, str]) -> None:
    """Every file in exactly one place (the destination, at its dated path), bytes intact, no
    temporary file; none left in the source or the quarantine."""
    arrived = files_under(fleet.dest)
    assert files_under(fleet.source) == {}
    assert [p for p in arrived if not p.startswith("_quarantine")] == list(arrived)
    by_name = {Path(p).name: (p, digest) for p, digest in arrived.items()}
    assert len(by_name) == len(arrived) == len(made), "a file arrived twice, or one is missing"
    for name, want in made.items():
        path, got = by_name[name]
        assert got == want, name
        assert path == f"{name[:4]}/{name[5:7]}/{name[8:10]}/{name}"


def assert_ledger_matches(fleet: Daemons, url: str, made: dict[str, str], names: list[str]) -> None:
    """Rows done == files moved, one row a file, each finished by exactly one instance; what the
    instances say they moved adds up to the same (none moved one twice)."""
    done = [r for r in table(url) if r[2] == "done"]
    assert rows(url) == {"done": len(made)}
    assert len({bytes(r[1]) for r in done}) == len(made)
    assert {Path(os.fsdecode(bytes(r[6]))).name for r in done} == set(made)
    moved = {}
    for name in names:
        snap = fleet.snapshot(name)
        assert snap is not None
        moved[name] = snap["totals"]["moved"]  # type: ignore[index]
    assert sum(moved.values()) == len(made), moved
    return None


BACKLOG = 50_000  # the 100,000: half waiting at the start, half arriving meanwhile
STREAM = 50_000


def test_three_instances_share_a_backlog_and_a_stream(daemons: Daemons) -> None:
    made = make_files(daemons.source, 0, BACKLOG)
    names = ["a", "b", "c"]
    for name in names:
        daemons.start(name)

    def stream() -> None:  # and files arriving meanwhile, settling as they come
        for start in range(BACKLOG, BACKLOG + STREAM, 500):
            made.update(make_files(daemons.source, start, 500, mtime=None))
            time.sleep(0.05)

    writer = threading.Thread(target=stream)
    writer.start()
    writer.join()
    wait_for(lambda: files_in_source(daemons) == 0, 300, "the source emptied")
    wait_for(lambda: rows(daemons.url) == {"done": len(made)}, 30, "every row done")
    time.sleep(1.5)  # (each instance publishes its snapshot once a second)
    status = cli("status", "--coordinator", daemons.url, "--source", str(daemons.source))
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == "healthy: 3 instance(s) of the fleet"
    members = [line for line in lines if " pid " in line]
    pids = {int(line.split(" pid ")[1].split()[0]) for line in members}
    assert pids == {p.pid for p in daemons.procs.values()}
    assert sum("  lister  " in line for line in members) == 1
    assert all("  running  " in line and "seen " in line and "files/s" in line for line in members)
    # The fleet's history: every instance's work, from any host.
    name = sorted(made)[61234]
    history = cli("history", "--coordinator", daemons.url, "-s", str(daemons.source), name)
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert "delivered" in lines[0] and len(lines) == 3, history.stdout
    assert lines[1].startswith("  from  " + str(daemons.source)) and lines[1].endswith(name)
    assert lines[2] == f"  to    {daemons.dest}/{name[:4]}/{name[5:7]}/{name[8:10]}/{name}"
    every = cli("history", "--coordinator", daemons.url, "--limit", str(len(made)), "--json", "2024-*")
    assert len(json.loads(every.stdout)) == len(made)
    assert daemons.stop_all() == {"a": 0, "b": 0, "c": 0}
    stopped = cli("status", "--coordinator", daemons.url, "--source", str(daemons.source))
    assert stopped.returncode == 2 and stopped.stdout.startswith("down: no instance runs on"), stopped.stdout
    assert_each_file_once(daemons, made)
    assert_ledger_matches(daemons, daemons.url, made, names)
    by = {r[5] for r in table(daemons.url)}
    assert len(by) >= 2, "one instance did all the work"


def test_the_lister_killed_another_lists_within_a_poll_interval(daemons: Daemons) -> None:
    made = make_files(daemons.source, 0, 1500)
    names = ["a", "b", "c"]
    procs = {name: daemons.start(name) for name in names}
    wait_for(lambda: lister_pid(daemons.url) is not None, 30, "a lister")
    wait_for(lambda: rows(daemons.url).get("done", 0) > 100, 60, "moves under way")
    wait_for(lambda: instances(daemons.url) == 3, 30, "each instance's first snapshot in the coordinator")
    first = lister_pid(daemons.url)
    victim = next(name for name, proc in procs.items() if proc.pid == first)
    procs[victim].kill()  # SIGKILL: its session, and with it the advisory lock, end at once
    killed = time.monotonic()
    procs[victim].wait()  # (reaped: not a zombie that status would find alive)
    wait_for(lambda: lister_pid(daemons.url) not in (None, first), 10, "another lister")
    took = time.monotonic() - killed
    assert took <= 1.0 + 1.5, took  # one poll interval (1 s), and room for a loaded machine
    status = cli("status", "--coordinator", daemons.url)
    assert status.returncode == 2, status.stdout
    assert status.stdout.startswith(f"down: {os.uname().nodename} pid {first} down"), status.stdout
    made.update(make_files(daemons.source, 1500, 500))  # listed by the new lister only
    wait_for(lambda: files_in_source(daemons) == 0, 300, "the source emptied")
    # Nothing stranded: what the dead instance held was taken over when its lease lapsed.
    wait_for(lambda: rows(daemons.url) == {"done": len(made)}, 30, "every row done")
    survivors = [n for n in names if n != victim]
    assert all(daemons.procs[n].poll() is None for n in survivors)
    daemons.stop_all()
    assert_each_file_once(daemons, made)
    with psycopg.connect(daemons.url) as conn:
        late = conn.execute("SELECT count(*) FROM reorg_files WHERE state <> 'done'").fetchone()
    assert late == (0,)


def test_an_instance_stalled_past_its_lease_changes_nothing_when_it_wakes(daemons: Daemons) -> None:
    made = make_files(daemons.source, 0, 2000)
    # It stops itself (SIGSTOP, as a VM pause would) with its second batch claimed and
    # confirmed, before it moves it: the claims lapse, the others take them over.
    stalled = daemons.start("stalled", env={"REORG_STOP_AT": "claimed:2:pause"})
    wait_for(lambda: _stopped(stalled.pid), 60, "the instance to stall")
    assert lister_pid(daemons.url) == stalled.pid  # (alone, it was the lister: its session lives on)
    others = [daemons.start(name) for name in ("a", "b")]
    made.update(make_files(daemons.source, 2000, 300))  # arriving while it is stalled
    # Not heard of for its lease, the stalled lister's session is ended and another lists.
    wait_for(lambda: lister_pid(daemons.url) in {p.pid for p in others}, 30, "another lister")
    said = lambda: any("had not been heard of" in daemons.log(n) for n in ("a", "b"))  # noqa: E731
    wait_for(said, 10, "the takeover said in the log")
    wait_for(lambda: files_in_source(daemons) == 0, 300, "the source emptied")
    wait_for(lambda: rows(daemons.url) == {"done": len(made)}, 30, "every row done")
    before = table(daemons.url)
    assert any(r[5] for r in before)
    os.kill(stalled.pid, signal.SIGCONT)  # it wakes, and goes on with the batch it had
    wait_for(lambda: "not recorded" in daemons.log("stalled"), 30, "its late outcomes refused")
    time.sleep(1.5)  # (a heartbeat or two of it, which must not touch the rows either)
    assert table(daemons.url) == before, "a late outcome changed a row"
    assert daemons.stop_all() == {"stalled": 0, "a": 0, "b": 0}
    assert_each_file_once(daemons, made)
    assert_ledger_matches(daemons, daemons.url, made, ["stalled", "a", "b"])


def test_the_database_stopped_and_started_under_the_fleet(daemons: Daemons, postgres) -> None:
    made = make_files(daemons.source, 0, 500)
    for name in ("a", "b"):
        daemons.start(name)
    wait_for(lambda: files_in_source(daemons) == 0, 60, "the backlog moved")
    postgres.stop()
    try:
        for name in ("a", "b"):
            wait_for(
                lambda n=name: (daemons.snapshot(n) or {}).get("state") == "paused-coordinator",
                30,
                f"{name} to pause",
            )
        late = make_files(daemons.source, 500, 200)
        made.update(late)
        time.sleep(2.0)  # settled (0.2 s) many times over: nothing may move without a claim
        assert files_in_source(daemons) == 200
        down = cli("status", "--coordinator", daemons.url)
        assert down.returncode == 2 and down.stdout.startswith("down: the coordinator does not answer")
        assert daemons.url not in down.stdout
        for name in ("a", "b"):
            one = cli("status", "--state-dir", str(daemons.state_dir(name)))
            assert one.returncode == 1 and "not reachable" in one.stdout, one.stdout
            snap = daemons.snapshot(name)
            assert snap is not None and "not reachable" in str(snap["pause_reason"])
            assert "intake paused (coordinator" in daemons.log(name)
            assert daemons.url not in daemons.log(name)
    finally:
        postgres.start()
    wait_for(lambda: files_in_source(daemons) == 0, 60, "intake resumed by itself")
    wait_for(lambda: rows(daemons.url) == {"done": len(made)}, 30, "every row done")
    for name in ("a", "b"):
        wait_for(lambda n=name: (daemons.snapshot(n) or {}).get("state") == "running", 10, "running")
        # Said once each, however long it was down: no pause and resume every round meanwhile.
        assert daemons.log(name).count("intake paused (coordinator") == 1, daemons.log(name)
        assert daemons.log(name).count("intake resumed (coordinator") == 1
    assert daemons.stop_all() == {"a": 0, "b": 0}
    assert_each_file_once(daemons, made)


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "T"
    except OSError:
        return False
