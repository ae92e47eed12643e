"""`--shard K/N`: instances that share one source, each taking the files whose path hashes to its
K. Real daemons (`reorg-tui --headless`, `--once` and watching) in their own processes, on real
folders with a few thousand files:
- every file handled by exactly one shard: each file in exactly one place (a sha256 manifest
  before and after), and each shard's ledger names only files that hash to it;
- two instances of one shard refuse each other, and so do shards of different N, and shards
  beside an instance without --shard: one line, exit 3, the running ones unaffected;
- `status` of any shard names the shards that are not running (degraded, exit 1), and there is
  no failover: a stopped shard's files wait in the source until it runs again.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reorg_tui.engine.ledger import Query, TransferKind
from reorg_tui.engine.locate import default_state_dir
from reorg_tui.engine.publish import read_state
from reorg_tui.engine.shard import shard_of
from reorg_tui.history import read
from tests.conftest import OLD, cli, wait_for, write
from tests.integration.conftest import STARTED

N = 4
FOLDERS = ("", "scans", "scans/2024", "mail")  # with --recursive: a file's folder is in its path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}


def _args(root: Path, *extra: str) -> list[str]:
    src, dest, q, state = (root / n for n in ("src", "dest", "q", "state"))
    return [
        *("-s", str(src), "-d", str(dest), "--quarantine", str(q), "--state-dir", str(state)),
        *("--recursive", "--settle", "0.2", "--poll-interval", "0.5", "--workers", "2"),
        *extra,
    ]


def _folders(tmp_path: Path) -> Path:
    for name in ("src", "dest", "q"):
        (tmp_path / name).mkdir()
    return tmp_path


def _files(src: Path, count: int, tag: str, *, bad: int = 0) -> dict[str, bytes]:
    """``count`` ready files spread over FOLDERS, each name in every folder (so that shards race
    for one name in the destination), and ``bad`` more with a date that does not exist: each
    goes to the quarantine. rel -> bytes."""
    made = {}
    for i in range(count + bad):
        folder, j = FOLDERS[i % len(FOLDERS)], i // len(FOLDERS)
        date = f"2024-03-{1 + j % 28:02d}" if i < count else "2024-02-31"
        rel = f"{folder}/{date}_{tag}{j:04d}.txt".lstrip("/")
        assert rel not in made
        data = f"{tag} file {i} at {rel}\n".encode()
        write(src / rel, data, OLD)
        made[rel] = data
    return made


def _manifest(root: Path) -> collections.Counter[str]:
    """sha256 of every file that is a user's: in the source, the destination, the quarantine
    (not its records, nor a staging folder), each counted as often as it is found."""
    found: collections.Counter[str] = collections.Counter()
    for top in ("src", "dest", "q"):
        for dirpath, _dirs, names in os.walk(root / top):
            for name in names:
                path = Path(dirpath) / name
                if ".reorg-tmp" in path.parts or (Path(dirpath) == root / "q" and name.endswith(".json")):
                    continue
                found[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    return found


def _expected(files: dict[str, bytes]) -> collections.Counter[str]:
    return collections.Counter(hashlib.sha256(data).hexdigest() for data in files.values())


def _left_in_source(src: Path) -> set[str]:
    return {str(p.relative_to(src)) for p in src.rglob("*") if p.is_file()}


def _handled(root: Path, k: int) -> dict[str, TransferKind]:
    """What shard k's ledger says it did: source path (below src) -> the kind of transfer."""
    rows = read(root / "state" / f"shard-{k}-of-{N}", Query(limit=10**6))
    src = str(root / "src")
    out = {}
    for row in rows:
        rel = os.path.relpath(row.source_path, src)
        assert rel not in out, f"shard {k} handled {rel} twice"
        out[rel] = row.kind
    return out


def _check_every_file_handled_once(root: Path, files: dict[str, bytes], bad: set[str]) -> None:
    """Each file delivered (or, for a bad date, quarantined) by the one shard it hashes to."""
    seen: dict[str, int] = {}
    for k in range(N):
        for rel, kind in _handled(root, k).items():
            assert shard_of(rel, N) == k, f"shard {k} handled {rel}, which is shard {shard_of(rel, N)}'s"
            assert rel not in seen, f"{rel} handled by shards {seen[rel]} and {k}"
            seen[rel] = k
            assert kind is (TransferKind.QUARANTINE if rel in bad else TransferKind.DELIVER), (rel, kind)
    assert set(seen) == set(files), set(files) ^ set(seen)


def _running(state: Path, pid: int) -> bool:
    data = read_state(state) or {}
    return data.get("pid") == pid and data.get("snapshot", {}).get("state") == "running"


def _start(root: Path, k: int | None, *extra: str) -> subprocess.Popen[str]:
    """A watching daemon (shard k, or without --shard), its log in a file of its own: a pipe
    nobody reads would stall its log, and `status` would rightly call that degraded."""
    shard = () if k is None else ("--shard", f"{k}/{N}")
    log = open(root / f"log-{k}-{len(STARTED)}", "w")  # noqa: SIM115 - the daemon's, closed by its end
    proc = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", *_args(root, *shard, *extra)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    log.close()
    STARTED.append(proc)
    folder = root / "state" / (f"shard-{k}-of-{N}" if k is not None else "")
    for arg, value in zip(extra, extra[1:], strict=False):
        if arg == "--state-dir":
            folder = Path(value) / (f"shard-{k}-of-{N}" if k is not None else "")
    wait_for(lambda: _running(folder, proc.pid) or proc.poll() is not None, what=f"shard {k} to run")
    assert proc.poll() is None, (root / f"log-{k}-{len(STARTED) - 1}").read_text()
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def _status(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("status", "-s", str(root / "src"), "--state-dir", str(root / "state"), *extra)


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    """A daemon refused to start: exit 3, and one line that says why."""
    assert result.returncode == 3, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    return line


def test_four_shards_once_at_the_same_time_handle_every_file_exactly_once(tmp_path):
    root = _folders(tmp_path)
    files = _files(root / "src", 3000, "once", bad=8)
    bad = {rel for rel in files if "-02-31_" in rel}
    before = _manifest(root)
    assert before == _expected(files) and sum(before.values()) == 3008
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "reorg_tui", "--once", *_args(root, "--shard", f"{k}/{N}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for k in range(N)
    ]
    STARTED.extend(procs)
    for k, proc in enumerate(procs):
        _, err = proc.communicate(timeout=240)
        quarantined = any(shard_of(rel, N) == k for rel in bad)
        assert proc.returncode == (1 if quarantined else 0), (k, err[-2000:])
    assert _left_in_source(root / "src") == set()
    assert _manifest(root) == before  # each file in exactly one place, its bytes intact
    _check_every_file_handled_once(root, files, bad)
    counts = [sum(1 for rel in files if shard_of(rel, N) == k) for k in range(N)]
    assert all(600 < c < 900 for c in counts), counts  # every shard had its share to do
    # `history --shard` reads that shard's ledger: its files, all of them, and no other's.
    shown = cli(
        *("history", "*", "--json", "--limit", "5000", "-s", str(root / "src")),
        *("--state-dir", str(root / "state"), "--shard", "2/4"),
    )
    assert shown.returncode == 0, shown.stderr
    sources = [os.path.relpath(row["source"], root / "src") for row in json.loads(shown.stdout)]
    assert sorted(sources) == sorted(rel for rel in files if shard_of(rel, N) == 2)


def test_watching_shards_share_a_stream_and_a_stopped_shard_s_files_wait(tmp_path):
    root = _folders(tmp_path)
    files = _files(root / "src", 1200, "backlog")
    procs = {k: _start(root, k) for k in range(N)}
    files |= _files(root / "src", 800, "stream")  # arriving while they watch
    wait_for(lambda: not _left_in_source(root / "src"), timeout=120, what="every file to move")
    assert _manifest(root) == _expected(files)
    healthy = _status(root, "--shard", "2/4", "--json")
    assert healthy.returncode == 0, healthy.stdout
    assert '"shard": "3/4"' in healthy.stdout

    # Shard 1 dies: no failover. Its new files wait; the others' move; status names it.
    dead = procs.pop(1)
    dead.kill()
    dead.wait()  # (reaped, as its supervisor would: a zombie's pid is still there)
    later = _files(root / "src", 400, "later")
    files |= later
    theirs = {rel for rel in later if shard_of(rel, N) == 1}
    assert 50 < len(theirs) < 150
    wait_for(lambda: _left_in_source(root / "src") == theirs, timeout=60, what="the other shards' files")
    for k in (0, 3):
        status = _status(root, "--shard", f"{k}/4")
        assert status.returncode == 1, status.stdout
        assert "degraded: 1 of 4 shards not running: 1/4 (their files wait)" in status.stdout
    together = _status(root)  # no --shard: every shard of the source
    assert together.returncode == 1, together.stdout
    assert "is processed by shards of 4: 3 of 4 shards running; 1 of 4 shards not running: 1/4" in (
        together.stdout
    )
    assert _left_in_source(root / "src") == theirs  # still waiting: nobody took them over

    procs[1] = _start(root, 1)  # back: it takes its own
    wait_for(lambda: not _left_in_source(root / "src"), timeout=60, what="shard 1's files to move")
    wait_for(lambda: _status(root, "--shard", "0/4").returncode == 0, what="every shard healthy")
    for proc in procs.values():
        _stop(proc)
    assert _manifest(root) == _expected(files)
    _check_every_file_handled_once(root, files, set())
    down = _status(root, "--shard", "0/4")
    assert down.returncode == 2 and "4 of 4 shards" not in down.stdout, down.stdout
    assert "not running" in down.stdout and "3 of 4 shards not running: 1/4, 2/4, 3/4" in down.stdout


def test_a_shard_twice_shards_of_another_n_and_an_unsharded_instance_refuse(tmp_path):
    root = _folders(tmp_path)
    src = root / "src"
    first, second = _start(root, 0), _start(root, 1)
    # The same shard again, even with a state folder of its own: refused by its shard's lock.
    again = cli("--headless", *_args(root, "--shard", "1/4", "--state-dir", str(root / "other")))
    assert _refusal(again).endswith(f"shard 1/4 of {src} is already running (pid {second.pid})")
    other_n = cli("--headless", *_args(root, "--shard", "1/2", "--state-dir", str(root / "other")))
    line = _refusal(other_n)
    assert f"shards of 4 (pid {first.pid}) are processing {src}" in line or (
        f"shards of 4 (pid {second.pid}) are processing {src}" in line
    )
    assert line.endswith("shard 1/2 cannot run beside them (every shard of one source must have the same N)")
    unsharded = cli("--headless", *_args(root, "--state-dir", str(root / "other")))
    assert "an instance without --shard cannot run beside them (start it with --shard K/4" in (
        _refusal(unsharded)
    )
    # A dashboard attaches to the shard it names, and without --shard is told of the shards.
    from reorg_tui.config import load
    from reorg_tui.engine.lock import AlreadyRunning
    from reorg_tui.tui.run import dashboard

    flags = {"source": str(src), "dest": str(root / "dest"), "state_dir": str(root / "state")}
    app, _ = dashboard(load({**flags, "shard": "1/4"}, env={}))
    assert app.host.settings.state_dir == root / "state" / "shard-1-of-4"  # type: ignore[attr-defined]
    with pytest.raises(AlreadyRunning, match=r"shards of 4 are processing .*: give --shard K/4 to attach"):
        dashboard(load(flags, env={}))
    # The ones running are unaffected: each still takes its files.
    files = _files(src, 40, "after")
    wait_for(
        lambda: _left_in_source(src) == {rel for rel in files if shard_of(rel, N) in (2, 3)},
        what="shards 0 and 1 to keep working",
    )
    for proc in (first, second):
        _stop(proc)

    # And the other way round: beside an instance without --shard, a shard refuses.
    alone = _start(root, None, "--state-dir", str(root / "alone"))
    wait_for(lambda: _left_in_source(src) == set(), what="the unsharded one to take the rest")
    shard = cli("--headless", *_args(root, "--shard", "0/4"))
    assert f"holds {src} alone (an instance without --shard, an undo or an apply): shard 0/4 cannot" in (
        _refusal(shard)
    )
    _stop(alone)
    assert _manifest(root) == _expected(files)


def _opened(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_shards_of_two_ns_started_at_the_same_moment_never_both_run(tmp_path):
    """Two shards of different N starting at once: exactly one runs, the other refuses (never
    both, never neither). Their checks are made under shards.lock: the test holds it until both
    wait on it, so that both reach the checks together, then lets go."""
    root = _folders(tmp_path)
    shards = ("1/2", "1/3")
    states = [root / "state" / "shard-1-of-2", root / "state" / "shard-1-of-3"]
    mutex_path = default_state_dir(root / "src") / "shards.lock"
    mutex_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for round_ in range(2):
        mutex = os.open(mutex_path, os.O_RDONLY | os.O_CREAT, 0o600)
        fcntl.flock(mutex, fcntl.LOCK_EX)
        logs = [root / f"race-{round_}-{i}.log" for i in range(2)]
        procs = []
        for shard, log in zip(shards, logs, strict=True):
            with open(log, "w") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "reorg_tui", "--headless", *_args(root, "--shard", shard)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=_env(),
                    )
                )
        STARTED.extend(procs)
        waiting = lambda procs=procs: all(_opened(p.pid, mutex_path) for p in procs)  # noqa: E731
        wait_for(waiting, what="both to wait for the checks")
        for proc, state in zip(procs, states, strict=True):  # neither has gone past it
            assert proc.poll() is None and (read_state(state) or {}).get("pid") != proc.pid
        os.close(mutex)  # both go on, one after the other

        def settled(procs: list[subprocess.Popen[str]] = procs) -> bool:
            pairs = zip(procs, states, strict=True)
            return all(p.poll() is not None or _running(s, p.pid) for p, s in pairs)

        wait_for(settled, what="each to run or refuse")
        refused = [i for i, p in enumerate(procs) if p.poll() is not None]
        assert len(refused) == 1, (round_, [p.poll() for p in procs])
        [loser] = refused
        assert procs[loser].returncode == 3
        assert "cannot run beside them (every shard of one source must have the same N)" in (
            logs[loser].read_text()
        )
        _stop(procs[1 - loser])


_SPINNER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
taken = found_held = 0
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        found_held += 1
        continue
    taken += 1
    fcntl.flock(fd, fcntl.LOCK_UN)
print(taken, found_held, flush=True)
"""


def test_asking_whether_a_shard_runs_never_takes_its_lock(tmp_path):
    """The dashboard asks whether shard K runs (``shard_held``) before it attaches to it or runs
    it. Asking used to take the shard's lock for an instant: a daemon of that shard starting
    then found it held and refused (exit 3, "already running (pid <the dashboard>)"). A child
    stands in for that start, trying the lock without blocking, again and again, while this
    process asks 3,000 times: it must never find the lock taken. Then a real daemon: held."""
    from reorg_tui.engine.shard import Shard
    from reorg_tui.engine.shard_lock import shard_held

    root = _folders(tmp_path)
    src = root / "src"
    lock = default_state_dir(src) / "shard-2-of-4.lock"
    lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock.touch()
    done = tmp_path / "done"
    spinner = subprocess.Popen(
        [sys.executable, "-c", _SPINNER, str(lock), str(done)], stdout=subprocess.PIPE, text=True
    )
    STARTED.append(spinner)
    assert spinner.stdout is not None and spinner.stdout.readline() == "ready\n"
    for _ in range(3000):
        shard_held(src, Shard(2, 4))
    done.touch()
    out, _ = spinner.communicate(timeout=30)
    taken, found_held = map(int, out.split())
    assert taken > 0  # it did try, all along
    assert found_held == 0, f"a starting shard found its lock taken {found_held} time(s) by a probe"

    assert not shard_held(src, Shard(2, 4))
    proc = _start(root, 2)
    assert shard_held(src, Shard(2, 4)) and not shard_held(src, Shard(1, 4))
    _stop(proc)
    assert not shard_held(src, Shard(2, 4))


def test_status_of_a_shard_finds_a_sibling_that_keeps_its_state_elsewhere(tmp_path):
    """Shard 3/4 started with a --state-dir of its own: `status` of another shard used to look
    for it only beside its own folder and called it not running (degraded, exit 1). It is found
    where it said it keeps its state (its pointer in the default folder), as `status` without
    --shard finds each shard: with the other shards' --state-dir given, and with none."""
    root = _folders(tmp_path)
    procs = [_start(root, k) for k in range(3)]
    procs.append(_start(root, 3, "--state-dir", str(root / "own")))
    for extra in (("--state-dir", str(root / "state")), ()):
        shown = cli("status", "-s", str(root / "src"), "--shard", "0/4", "--json", *extra)
        assert shown.returncode == 0, shown.stdout
        shards = {s["shard"]: s["status"] for s in json.loads(shown.stdout)["shards"]}
        assert shards == {f"{k}/4": "healthy" for k in range(N)}, (extra, shown.stdout)
    _stop(procs[3])  # and once it stops, it is named as not running
    down = _status(root, "--shard", "0/4")
    assert down.returncode == 1 and "1 of 4 shards not running: 3/4" in down.stdout, down.stdout
    for proc in procs[:3]:
        _stop(proc)
