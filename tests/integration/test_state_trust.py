"""The state folder is a trust boundary: a daemon refuses one another user could have written
(#14), and two daemons never share one.

The other user is real: folders are made by a process that setpriv(1) runs as nobody (65534),
so the kernel records that user as their owner, exactly as an attacker's `mkdir` in /tmp would.
The tests run as root, which could write anywhere: that is the daemon being protected here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, wait_for, write

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]

pytestmark = pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0,
    reason="needs root and setpriv(1) to act as another user",
)


@pytest.fixture
def root():
    """A folder like /tmp (sticky and world-writable: where the attack of #14 happened), in which
    nobody can make folders of its own, as it cannot in /tmp/pytest-of-root."""
    folder = Path(tempfile.mkdtemp(prefix="rt-trust-", dir="/tmp"))
    os.chmod(folder, 0o1777)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)])


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("REORG_")}, **extra}


def _as_nobody(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, *argv], capture_output=True, text=True, timeout=60, env=_env(**env))


def _forge(state: Path) -> bytes:
    """What the attacker of #14 wrote: a snapshot of a healthy daemon that does not run (pid 1,
    alive, so that only ownership can give the forgery away); written as nobody where nobody
    owns the folder (a group member's write, in a 0770 folder, looks the same to the daemon)."""
    snapshot = {
        "taken_at": time.time(),
        "state": "running",
        "source": "/srv/inbox",
        "dest": "/srv/archive",
    }
    data = {"version": 1, "pid": 1, "published_at": time.time() + 3600, "snapshot": snapshot}
    raw = json.dumps(data).encode()
    if state.stat().st_uid != NOBODY:
        (state / "snapshot.json").write_bytes(raw)
        return raw
    script = f"import sys; open({str(state / 'snapshot.json')!r}, 'wb').write(sys.stdin.buffer.read())"
    subprocess.run([*AS_NOBODY, sys.executable, "-c", script], input=raw, check=True)
    return raw


def _folders(root: Path) -> tuple[Path, Path, Path]:
    src, dst, q = root / "src", root / "dst", root / "q"
    for p in (src, dst, q):
        p.mkdir()
    write(src / "2024-05-05_a.txt", b"a", OLD)
    write(src / "upload.part", b"half an upload", OLD)
    return src, dst, q


def _once(src: Path, dst: Path, q: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("--once", "-s", str(src), "-d", str(dst), "--quarantine", str(q), "--state-dir", str(state),
               "--settle", "0", *extra)  # fmt: skip


def _refused(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reorg-tui: error:"), result.stderr
    assert fragment in lines[0], lines[0]


def _nobodys(root: Path, name: str, mode: int = 0o755) -> Path:
    folder = root / name
    made = _as_nobody("mkdir", "-m", f"{mode:o}", str(folder))
    assert made.returncode == 0, made.stderr
    assert folder.stat().st_uid == NOBODY
    return folder


def _roots(root: Path, name: str, mode: int) -> Path:
    folder = root / name
    folder.mkdir()
    os.chmod(folder, mode)  # (chmod: mkdir's mode is cut by the umask)
    return folder


CASES = {
    "owned-by-another-user": (lambda root: _nobodys(root, "st"), "is owned by nobody (uid 65534)"),
    "mode-0777": (lambda root: _roots(root, "st", 0o777), "is writable by group or others (mode 0777)"),
    "mode-0770": (lambda root: _roots(root, "st", 0o770), "is writable by group or others (mode 0770)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_state_folder_another_user_could_write_is_refused_and_nothing_is_touched(root, case):
    make, fragment = CASES[case]
    src, dst, q = _folders(root)
    state = make(root)
    forged = _forge(state)
    before = sorted(os.listdir(state))

    result = _once(src, dst, q, state)

    _refused(result, f"state folder {state} {fragment}")
    assert sorted(os.listdir(state)) == before  # no lock.json, no ledger, no socket
    assert (state / "snapshot.json").read_bytes() == forged
    assert (src / "2024-05-05_a.txt").read_bytes() == b"a" and list(dst.iterdir()) == []


def test_a_state_folder_below_a_folder_another_user_owns_is_refused_and_not_made(root):
    """The attacker makes the parent first: whatever we then make in it, they could swap."""
    src, dst, q = _folders(root)
    parent = _nobodys(root, "theirs")
    result = _once(src, dst, q, parent / "deep" / "st")
    _refused(result, f"{parent}, above the state folder {parent / 'deep' / 'st'}, is owned by nobody")
    assert list(parent.iterdir()) == []  # nothing made in it
    assert (src / "2024-05-05_a.txt").exists() and list(dst.iterdir()) == []


def test_a_state_folder_below_a_world_writable_folder_without_the_sticky_bit_is_refused(root):
    src, dst, q = _folders(root)
    parent = _roots(root, "open", 0o777)
    result = _once(src, dst, q, parent / "st")
    _refused(result, f"{parent}, above the state folder {parent / 'st'}, is writable by group or others")
    assert list(parent.iterdir()) == []


def test_the_folders_it_makes_are_its_own_and_private_even_in_tmp(root):
    """/tmp is world-writable but sticky: a state folder made there is safe, and is made 0700
    (its parents 0755) whatever the umask."""
    src, dst, q = _folders(root)
    state = Path(tempfile.mktemp(prefix="rt-trust-new-", dir="/tmp")) / "a" / "st"
    try:
        result = cli("--once", "-s", str(src), "-d", str(dst), "--quarantine", str(q), "--state-dir",
                     str(state), "--settle", "0", umask=0o000)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert stat.S_IMODE(state.parent.stat().st_mode) == 0o755
        assert (dst / "2024/05/05/2024-05-05_a.txt").read_bytes() == b"a"
    finally:
        subprocess.run(["rm", "-rf", str(state.parent.parent)])


def test_a_daemon_that_is_not_root_starts_with_its_own_state_folder(root):
    """As nobody, on folders nobody owns: its own state folder (an existing one, and one it
    makes) is trusted, though the folders above are root's."""
    src, dst, q = (_nobodys(root, name) for name in ("src", "dst", "q"))
    made = _as_nobody(sys.executable, "-c", f"open({str(src / '2024-05-05_a.txt')!r}, 'w').write('a')")
    assert made.returncode == 0, made.stderr
    os.utime(src / "2024-05-05_a.txt", (OLD, OLD))
    existing = _nobodys(root, "st")
    for state in (existing, existing / "new"):
        args = ["-s", str(src), "-d", str(dst), "--quarantine", str(q), "--state-dir", str(state)]
        result = _as_nobody(sys.executable, "-m", "reorg_tui", "--once", "--settle", "0", *args,
                            XDG_STATE_HOME=str(existing))  # (where nobody may write its pointer)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert state.stat().st_uid == NOBODY and stat.S_IMODE(state.stat().st_mode) == 0o700
    assert (dst / "2024/05/05/2024-05-05_a.txt").read_text() == "a"


def test_status_does_not_believe_a_snapshot_in_a_folder_another_user_owns(root):
    """The forgery of #14: a healthy snapshot, with no daemon running. status reports it as not
    to be trusted, exit 2 (not running, as far as anyone can tell), never "healthy"."""
    state = _nobodys(root, "st")
    _forge(state)
    result = cli("status", "--state-dir", str(state))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("untrusted:"), result.stdout
    assert "is owned by nobody (uid 65534)" in result.stdout and "healthy" not in result.stdout
    as_json = json.loads(cli("status", "--state-dir", str(state), "--json").stdout)
    assert as_json["status"] == "down" and as_json["snapshot"] is None


def test_status_of_a_daemon_run_as_another_user_is_believed_by_root(root):
    """Root checking a service that runs as its own user: the state folder is that user's, and
    a live process of that user holds the source: believed."""
    src, dst, q = (_nobodys(root, name) for name in ("src", "dst", "q"))
    state = root / "st"
    args = ["-s", str(src), "-d", str(dst), "--quarantine", str(q), "--state-dir", str(state)]
    daemon = subprocess.Popen([*AS_NOBODY, sys.executable, "-m", "reorg_tui", "--headless", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(XDG_STATE_HOME=str(q)))  # fmt: skip
    try:
        wait_for(lambda: (state / "snapshot.json").exists(), what="the daemon to publish")
        result = cli("status", "--source", str(src), "--state-dir", str(state))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("healthy"), result.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=15)


def test_two_daemons_with_different_sources_never_share_a_state_folder(root):
    src, dst, q = _folders(root)
    other = root / "src2"
    other.mkdir()
    state = root / "st"
    first = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", "-s", str(src), "-d", str(dst), "--quarantine",
         str(q), "--state-dir", str(state), "--settle", "0", "--poll-interval", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: (state / "snapshot.json").exists(), what="the first daemon to publish")
        second = _once(other, dst, q, state)
        assert second.returncode == 3, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"another reorg-tui instance (pid {first.pid}) keeps its state in {state}" in lines[0]
        assert json.loads((state / "lock.json").read_text())["pid"] == first.pid  # not replaced
        write(src / "2024-06-06_after.txt", b"after")  # (no mtime to set: the daemon may take it at once)
        wait_for((dst / "2024/06/06/2024-06-06_after.txt").exists, what="the first to keep working")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=15)
    assert first.returncode == 0


def test_the_quarantine_commands_ask_no_socket_in_a_folder_another_user_owns(root):
    """A control socket planted in a state folder of nobody's answers "released" and does
    nothing. The release must not believe it: it warns, and does the release itself."""
    src, dst, q = _folders(root)
    write(src / "2024-02-30_bad.txt", b"no such day", OLD)
    assert _once(src, dst, q, root / "mine").returncode == 1  # quarantined
    [item] = q.glob("*/2024-02-30_bad.txt")
    state = _nobodys(root, "st")
    liar = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    liar.bind(str(state / "control.sock"))
    liar.listen(4)

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = liar.accept()
                with conn:
                    conn.makefile("rb").readline()
                    conn.sendall(b'{"ok": true, "result": "/nowhere/released"}\n')

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = cli(
            "quarantine",
            "release",
            item.parent.name,
            "-q",
            str(q),
            "-s",
            str(src),
            env={"REORG_STATE_DIR": str(state)},
        )
    finally:
        liar.close()
    assert result.returncode == 0, result.stderr
    assert f"released {item.parent.name} -> {src / '2024-02-30_bad.txt'}" in result.stdout
    assert (src / "2024-02-30_bad.txt").read_bytes() == b"no such day" and not item.exists()
    warnings = [line for line in result.stderr.splitlines() if "is owned by nobody" in line]
    assert len(warnings) == 1 and "reading the quarantine's records instead" in warnings[0]


def test_a_dashboard_does_not_attach_to_a_state_folder_another_user_owns(root):
    """The source is held (here by this process's own flock, as a daemon holds it), so the
    dashboard would attach and show the forged snapshot: it refuses, in one line."""
    from reorg_tui.config import Settings
    from reorg_tui.engine.statedir import UntrustedStateDir
    from reorg_tui.tui.run import dashboard

    src, dst, q = _folders(root)
    state = _nobodys(root, "st")
    _forge(state)
    held = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with pytest.raises(UntrustedStateDir, match=f"state folder {state} is owned by nobody"):
            dashboard(Settings(source=src, dest=dst, quarantine=q, state_dir=state))
    finally:
        os.close(held)


@pytest.mark.parametrize(("group", "started"), [("private", True), ("shared", False)])
def test_a_group_writable_folder_above_is_accepted_only_for_its_owners_private_group(root, group, started):
    """Under `umask 002` a user's folders are group-writable by the user's private group (named
    as the user, no other member): that is no one else. Any other group could swap the state
    folder. The daemon runs as the system user `daemon` (uid 1, group `daemon`, no members)."""
    import grp
    import pwd

    user = pwd.getpwnam("daemon")
    private = grp.getgrgid(user.pw_gid)
    if private.gr_name != user.pw_name or set(private.gr_mem) - {user.pw_name}:
        pytest.skip("the user daemon has no private group here")
    home = root / "home"
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid if group == "private" else NOBODY)  # (nogroup: shared)
    os.chmod(home, 0o775)
    folders = [home / name for name in ("src", "dst", "q")]
    for folder in folders:
        folder.mkdir()
        os.chown(folder, user.pw_uid, user.pw_gid)
    src, dst, q = folders
    os.chown(write(src / "2024-05-05_a.txt", b"a", OLD), user.pw_uid, user.pw_gid)
    state = home / "state"
    as_daemon = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    args = [
        "--once",
        "--settle",
        "0",
        "-s",
        str(src),
        "-d",
        str(dst),
        "--quarantine",
        str(q),
        "--state-dir",
        str(state),
    ]
    command = [*as_daemon, sys.executable, "-m", "reorg_tui", *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=_env(XDG_STATE_HOME=str(home))
    )
    if started:
        assert result.returncode == 0, result.stderr
        assert (dst / "2024/05/05/2024-05-05_a.txt").read_bytes() == b"a"
    else:
        _refused(
            result, f"{home}, above the state folder {state}, is writable by group or others (mode 0775)"
        )
        assert not state.exists() and (src / "2024-05-05_a.txt").exists()


@pytest.mark.parametrize("case", list(CASES))
def test_history_and_a_dry_run_undo_believe_no_ledger_another_user_could_write(root, case):
    """A ledger in a folder another user could write may be forged: a row of a "delivery" from
    any file to any name. ``history`` would print it, and ``undo --dry-run`` plan to move it
    (the undo itself already refused the folder, through the source's lock). Both refuse, in
    one line, exit 2, and the dry run leaves the ledger as it was (nothing made beside it)."""
    src, dst, q = _folders(root)
    state = root / "trusted"
    assert _once(src, dst, q, state).returncode == 0
    made, fragment = CASES[case]
    folder = made(root)
    for name in os.listdir(state):  # the real ledger, now in a folder another user can write
        shutil.copy2(state / name, folder / name)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    history = cli("history", "2024-05-05_a.txt", "--state-dir", str(folder))
    _refused(history, fragment)
    undo = cli(
        "undo", "--since", "1h", "--dry-run", "--state-dir", str(folder), "-s", str(src), "-d", str(dst)
    )
    _refused(undo, fragment)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    trusted = cli("history", "2024-05-05_a.txt", "--state-dir", str(state))
    assert trusted.returncode == 0 and "2024-05-05_a.txt" in trusted.stdout, trusted.stderr
