"""The roots keep their identity: a source, destination, quarantine or state folder replaced under
a running daemon (mv away and mkdir, rm -rf and mkdir, a bind mount over it) stops it with one
line and exit code 5, `status` never says healthy meanwhile, and no second instance starts on
the same path while the first lives. And instances whose folders overlap: a source inside
another's is refused; two sources sharing a destination and its layout are safe.

Real daemons (`reorg-tui --headless` in their own processes), real mv, rm, mkdir and mount. A
daemon is frozen with SIGSTOP while its folder is replaced, so that what `status` and a second
instance see before the daemon notices is tested, not raced.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from reorg_tui.engine.publish import read_state
from tests.conftest import OLD, cli, wait_for, write
from tests.integration.conftest import start_headless


@pytest.fixture
def mounts():
    points: list[Path] = []
    yield points
    for point in reversed(points):
        while subprocess.run(["umount", "-l", str(point)], capture_output=True).returncode == 0:
            pass


def _start(src: Path, dest: Path, q: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    q.mkdir(parents=True, exist_ok=True)  # a named quarantine must exist (some tests remove it)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    args = ["-s", str(src), "-d", str(dest), "--quarantine", str(q), "--state-dir", str(state)]
    args += ["--settle", "0.2", "--poll-interval", "0.5", "--workers", "2", *extra]
    proc = start_headless(args, env)
    wait_for(
        lambda: _running(state, proc.pid) or proc.poll() is not None,
        what="the daemon to start (and publish the roots it holds)",
    )
    assert proc.poll() is None, proc.communicate()[1]
    return proc


def _running(state: Path, pid: int) -> bool:
    published = read_state(state) or {}
    return published.get("pid") == pid and published.get("snapshot", {}).get("state") != "starting"


def _files(prefix: str, n: int, folder: Path) -> collections.Counter[str]:
    """Write ``n`` ready files; returns their manifest (as _manifest counts them)."""
    made: collections.Counter[str] = collections.Counter()
    for i in range(n):
        data = f"{prefix} {i} bytes".encode()
        write(folder / f"2024-03-{1 + i % 28:02d}_{prefix}{i:03d}.txt", data, OLD)
        made[hashlib.sha256(data).hexdigest()] += 1
    return made


def _manifest(*roots: Path) -> collections.Counter[str]:
    """sha256 of every regular file below these folders, each counted as often as it is found."""
    found: collections.Counter[str] = collections.Counter()
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink() and ".reorg-tmp" not in str(path):
                    found[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    return found


def _status(state: Path, src: Path) -> subprocess.CompletedProcess[str]:
    return cli("status", "-s", str(src), "--state-dir", str(state))


def _folders(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    src, dest, q, state = (tmp_path / n for n in ("inbox", "archive", "q", "state"))
    for p in (src, dest, q):  # a named quarantine must exist
        p.mkdir()
    return src, dest, q, state


def _replace(how: str, folder: Path, tmp_path: Path, mounts: list[Path]) -> Path | None:
    """Replace ``folder`` the way an operator or a deploy tool does; returns where the old one
    went (None: removed, with what was in it)."""
    if how == "mv":
        old = folder.with_name(folder.name + ".old")
        folder.rename(old)
        folder.mkdir()
        return old
    if how == "rm":
        shutil.rmtree(folder)
        folder.mkdir()
        return None
    over = tmp_path / f"over-{folder.name}"
    over.mkdir()
    result = subprocess.run(["mount", "--bind", str(over), str(folder)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {result.stderr.strip()}")
    mounts.append(folder)
    return folder  # the old folder is underneath the mount: its files are there after umount


@pytest.mark.parametrize("how", ["mv", "rm", "bind"])
def test_a_replaced_source_stops_the_daemon_with_one_line_and_never_reports_healthy(tmp_path, mounts, how):
    src, dest, q, state = _folders(tmp_path)
    _files("a", 6, src)
    first = _start(src, dest, q, state)
    wait_for(lambda: not any(src.iterdir()), what="the first files to move")
    assert _status(state, src).returncode == 0  # healthy before: the check below can tell

    first.send_signal(signal.SIGSTOP)  # it cannot notice: what status and others see is tested
    in_old = _files("b", 4, src)  # in the folder it locked, moved away (or removed) with it below
    before = _manifest(dest, q)
    old = _replace(how, src, tmp_path, mounts)
    before += _files("c", 5, src)  # in the new folder (or on the mount): not the first one's files
    if how != "rm":  # (the operator's rm took those with it)
        before += in_old

    status = _status(state, src)
    assert status.returncode != 0, status.stdout
    assert f"{src} was replaced" in status.stdout, status.stdout
    second = cli("--headless", "-s", str(src), "-d", str(dest), "--state-dir", str(tmp_path / "other"))
    assert second.returncode == 3, second.stderr
    assert f"(pid {first.pid}) is already processing {src}" in second.stderr

    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=20)
    assert first.returncode == 5, err[-2000:]
    line = (
        f"the source {src} was replaced while this instance ran (it is no longer the folder "
        "it locked): stopped; start it again to work on the folder there now"
    )
    assert err.count(line) == 1, err[-2000:]
    assert "Traceback" not in err
    assert "vanished" not in err
    if how == "bind":
        subprocess.run(["umount", str(src)], check=True)
        mounts.remove(src)
        old = src
        src = tmp_path / f"over-{src.name}"  # the new files were on the mount
    after = _manifest(*(p for p in (src, dest, q, old) if p is not None))
    assert after == before, "a file is lost or in two places"

    # As a supervisor would: started again, it takes the folder there now and moves its files.
    if how != "bind":
        again = _start(src, dest, q, state)
        wait_for(lambda: not any(src.iterdir()), what="the new folder's files to move")
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=15) == 0
        assert _manifest(src, dest, q, *(p for p in (old,) if p is not None)) == before


@pytest.mark.parametrize("root", ["archive", "q", "state"])
def test_a_replaced_destination_quarantine_or_state_folder_stops_the_daemon(tmp_path, root):
    src, dest, q, state = _folders(tmp_path)
    write(src / "2024-13-01_bad.txt", "no such month: quarantined", OLD)
    _files("a", 4, src)
    first = _start(src, dest, q, state)
    wait_for(lambda: not any(src.iterdir()), what="the first files to move")
    first.send_signal(signal.SIGSTOP)
    folder = tmp_path / root
    old = _replace("mv", folder, tmp_path, [])
    assert old is not None
    _files("b", 4, src)
    theirs = {"lock.json": b"not this instance's", "control.sock": b"nor this"}
    if root == "state":  # the names it keeps there, in the folder there now: not its to remove
        for name, data in theirs.items():
            (folder / name).write_bytes(data)
    # The state folder holds no files of the operator's (its ledger changes as the run ends).
    places = [src, dest, q] + ([old] if root != "state" else [])
    before = _manifest(*places)
    assert _status(state, src).returncode != 0
    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=20)
    assert first.returncode == 5, err[-2000:]
    label = {"archive": "destination", "q": "quarantine", "state": "state folder"}[root]
    assert f"the {label} {folder} was replaced while this instance ran" in err, err[-2000:]
    assert "Traceback" not in err
    assert _manifest(*places) == before
    if root == "state":
        found = {p.name: p.read_bytes() for p in state.iterdir()}
        assert found == theirs, "it wrote or removed something in a folder that is not its own"


def test_a_source_inside_a_recursive_instances_source_is_refused(tmp_path):
    src, dest, q, state = _folders(tmp_path)
    (src / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    outer = _start(src, dest, q, state, "--recursive")
    inner = cli(
        "--headless",
        "-s",
        str(src / "sub"),
        "-d",
        str(tmp_path / "elsewhere"),
        "--state-dir",
        str(tmp_path / "state2"),
    )
    assert inner.returncode == 3, inner.stderr
    assert (
        f"reorg-tui instance (pid {outer.pid}) is already processing {src}, "
        f"and {src / 'sub'} is inside it" in inner.stderr
    )
    _files("s", 5, src / "sub")
    wait_for(lambda: not any((src / "sub").iterdir()), what="the outer instance to keep working")
    outer.send_signal(signal.SIGTERM)
    assert outer.wait(timeout=15) == 0


def test_a_recursive_instance_leaves_alone_a_folder_below_that_another_instance_holds(tmp_path):
    src, dest, q, state = _folders(tmp_path)
    sub = src / "sub"
    sub.mkdir()
    other = tmp_path / "other-dest"
    other.mkdir()
    inner = _start(sub, other, tmp_path / "q2", tmp_path / "state2", "--stats-interval", "0.2")
    outer = _start(src, dest, q, state, "--recursive")
    before = _files("s", 30, sub) + _files("t", 10, src)
    wait_for(lambda: not any(p.is_file() for p in src.rglob("*")), what="both to move their files")
    for proc in (outer, inner):
        proc.send_signal(signal.SIGTERM)
    _, outer_err = outer.communicate(timeout=15)
    inner.communicate(timeout=15)
    assert outer.returncode == 0 and inner.returncode == 0
    assert len(list(other.rglob("*_s*.txt"))) == 30, "the inner instance moved every file in its folder"
    assert not list(dest.rglob("*_s*.txt")), "the outer instance took a file the inner one holds"
    assert len(list(dest.rglob("*_t*.txt"))) == 10
    assert f"{sub} is held by another instance (pid {inner.pid}): left to it" in outer_err
    assert _manifest(src, dest, other, q, tmp_path / "q2") == before


def test_two_sources_sharing_a_destination_and_its_layout_each_deliver_every_file_once(tmp_path):
    """Safe, not refused: every name is taken with a no-clobber rename, so two instances that
    deliver the same name at once get one each (the other under a collision name)."""
    dest = tmp_path / "archive"
    dest.mkdir()
    srcs = [tmp_path / "in-a", tmp_path / "in-b"]
    for i, src in enumerate(srcs):
        src.mkdir()
        for n in range(200):  # the same names in both sources, other bytes
            write(src / f"2024-05-{1 + n % 28:02d}_same{n:03d}.txt", f"{i} {n}", OLD)
    before = _manifest(*srcs)
    procs = [_start(src, dest, tmp_path / f"q-{src.name}", tmp_path / f"st-{src.name}") for src in srcs]
    wait_for(lambda: not any(any(s.iterdir()) for s in srcs), timeout=30, what="both to deliver")
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert _manifest(dest) == before, "every file delivered exactly once, none overwritten"
    assert len(list(dest.rglob("*.txt"))) == 400


def test_status_json_says_which_root_was_replaced(tmp_path):
    src, dest, q, state = _folders(tmp_path)
    first = _start(src, dest, q, state)
    first.send_signal(signal.SIGSTOP)
    dest.rename(tmp_path / "archive.old")
    dest.mkdir()
    result = cli("status", "-s", str(src), "--state-dir", str(state), "--json")
    first.send_signal(signal.SIGCONT)
    data = json.loads(result.stdout)
    assert result.returncode == 2 and data["status"] == "down", result.stdout
    assert f"the destination {dest} was replaced" in data["message"]
    assert first.wait(timeout=20) == 5


def test_a_source_replaced_under_load_stops_promptly_and_every_file_is_in_one_place(tmp_path, tmpfs):
    """Not frozen this time: mv and mkdir while copies (across filesystems) are in flight. The
    batches under way stop before their next file, copies in flight are abandoned whole."""
    src, _, q, state = _folders(tmp_path)
    dest = tmpfs("archive", size="256m")
    made: collections.Counter[str] = collections.Counter()
    for i in range(2000):
        data = (f"{i:08d}".encode() * 2500)[: 20_000 + i]
        write(src / f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}_f{i:05d}.bin", data, OLD)
        made[hashlib.sha256(data).hexdigest()] += 1
    daemon = _start(src, dest, q, state)
    wait_for(lambda: sum(1 for _ in dest.rglob("*.bin")) > 100, timeout=30, what="moves to start")
    replaced_at = time.monotonic()
    old = _replace("mv", src, tmp_path, [])
    assert old is not None
    _, err = daemon.communicate(timeout=30)
    stopped_in = time.monotonic() - replaced_at
    assert daemon.returncode == 5, err[-2000:]
    assert stopped_in < 10, f"stopped {stopped_in:.1f} s after the replacement"  # (a second, measured)
    assert "Traceback" not in err
    assert _manifest(src, old, dest, q) == made, "a file is lost or in two places"
    assert any(old.iterdir()), "the backlog should not have finished before the replacement"
    print(f"stopped {stopped_in:.2f} s after the source was replaced under load")


def test_a_home_where_nothing_can_be_made_costs_the_path_lock_not_the_run(tmp_path):
    """The path lock lives in this user's state home: a service user whose home cannot be
    written to (here a path below a file: ENOTDIR, which holds for root too) still runs."""
    src, dest, q, state = _folders(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    env["XDG_STATE_HOME"] = "/dev/null/state"
    args = ["-s", str(src), "-d", str(dest), "--quarantine", str(q), "--state-dir", str(state)]
    proc = start_headless([*args, "--settle", "0.2", "--poll-interval", "0.5"], env)
    _files("h", 3, src)
    wait_for(lambda: not any(src.iterdir()) or proc.poll() is not None, what="the files to move")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err[-2000:]
    assert f"cannot lock the path {src} (in /dev/null/state/reorg-tui/" in err, err[-2000:]
