"""The daemon as root without the capabilities that override file permissions.

Root normally reads anything, so a permission error cannot happen to it. setpriv(1) drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set before exec, so the daemon runs as
uid 0 but is refused, like any user, a file owned by someone else with mode 0600. That is how a
hardened unit (CapabilityBoundingSet=) runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under, write

DROP = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def _once_without_override(tmp_path, src, dest, q):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    args = ["--once", "-s", str(src), "-d", str(dest), "--quarantine", str(q), "--settle", "0"]
    args += ["--retry-base-delay", "0.05", "--retry-max-delay", "0.1", "--max-retries", "2"]
    args += ["--state-dir", str(tmp_path / "state")]
    return subprocess.run(
        [*DROP, sys.executable, "-m", "reorg_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_an_unreadable_file_retries_is_quarantined_whole_and_moves_once_readable(tmp_path, tmpfs):
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv(1) to drop the permission-override capabilities")
    src, q = tmp_path / "src", tmp_path / "q"
    src.mkdir()
    q.mkdir()  # a quarantine that is named must exist
    dest = tmpfs("dest")  # across filesystems: the move is a copy, which must read the file
    locked = write(src / "2024-07-01_private.txt", b"owned by someone else", OLD)
    os.chown(locked, 4242, 4242)
    os.chmod(locked, 0o600)
    write(src / "2024-07-01_public.txt", b"anyone may read", OLD)

    first = _once_without_override(tmp_path, src, dest, q)
    assert first.returncode == 1, first.stderr  # 1: something was quarantined
    assert "Traceback" not in first.stderr
    assert first.stderr.count("retry") >= 2 and "EACCES" in first.stderr
    assert set(files_under(dest)) == {"2024/07/01/2024-07-01_public.txt"}
    assert files_under(src) == {}
    [item] = json.loads(cli("quarantine", "list", "-q", str(q), "--json").stdout)
    assert "EACCES" in item["reason"] and item["attempts"] == 3
    kept = q / item["id"] / "2024-07-01_private.txt"
    assert kept.read_bytes() == b"owned by someone else"  # whole, and still its owner's
    assert (kept.stat().st_uid, kept.stat().st_mode & 0o777) == (4242, 0o600)

    os.chmod(kept, 0o644)  # the operator fixes the fault, then releases the file
    released = cli("quarantine", "release", item["id"], "-q", str(q), "-s", str(src))
    assert released.returncode == 0, released.stderr
    second = _once_without_override(tmp_path, src, dest, q)
    assert second.returncode == 0, second.stderr
    assert set(files_under(dest)) == {"2024/07/01/2024-07-01_public.txt", "2024/07/01/2024-07-01_private.txt"}
    assert files_under(src) == {} and files_under(q) == {}


USER = 4343  # the daemon's user in these tests: it owns the folders, not the setuid files


def _as_user(*args: str) -> subprocess.CompletedProcess[str]:
    """The daemon as an ordinary user (setpriv changes uid and gid and drops every group before
    exec, so the kernel treats it as that user: it may rename what its folders hold, but may not
    chmod a file another user owns, which is what a setuid file of root's needs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={USER}",
            f"--regid={USER}",
            "--clear-groups",
            "--",
            sys.executable,
            "-m",
            "reorg_tui",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _user_folders(across):
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="rt-user-", dir="/tmp"))
    os.chmod(root, 0o755)  # pytest's own folders are root's alone: the user could not reach them
    other = root
    if across:  # a second filesystem where the user can reach it
        other = root / "other"
        other.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(other)], capture_output=True
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    folders = {"src": root / "src", "dst": other / "dst", "q": other / "q", "state": root / "state"}
    for path in (*folders.values(), other):
        path.mkdir(exist_ok=True)
        os.chown(path, USER, USER)
    return root, folders


@pytest.mark.parametrize("across", [False, True], ids=["one-filesystem", "across"])
def test_a_non_root_daemon_moves_nothing_it_cannot_make_safe_and_deletes_nothing(across):
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv(1) to run the daemon as another user")
    root, f = _user_folders(across)
    try:
        theirs = write(f["src"] / "2024-07-01_tool", b"#!/bin/sh\necho root\n", OLD)  # root's
        os.chmod(theirs, 0o4755)
        bad = write(f["src"] / "2024-02-31_tool", b"an impossible date, to quarantine", OLD)
        os.chmod(bad, 0o6755)  # root's too: the quarantine must not take it with its bits
        mine = write(f["src"] / "2024-07-02_mine", b"the daemon user's own", OLD)
        os.chown(mine, USER, USER)
        os.chmod(mine, 0o4755)
        args = ["--once", "-s", str(f["src"]), "-d", str(f["dst"]), "--quarantine", str(f["q"])]
        args += ["--state-dir", str(f["state"]), "--settle", "0"]

        result = _as_user(*args)

        assert result.returncode == 1, result.stderr  # 1: files were left in the source
        assert "Traceback" not in result.stderr
        # Another user's setuid files: left exactly as they were, with the reason said.
        assert theirs.read_bytes() == b"#!/bin/sh\necho root\n" and theirs.stat().st_mode & 0o7777 == 0o4755
        assert bad.stat().st_mode & 0o7777 == 0o6755
        assert result.stderr.count("stays in the source: setuid or setgid file of uid 0") == 2, result.stderr
        # Its own: delivered, without the bit.
        arrived = f["dst"] / "2024/07/02/2024-07-02_mine"
        assert arrived.read_bytes() == b"the daemon user's own"
        assert arrived.stat().st_mode & 0o7777 == 0o755
        assert not [p for p in files_under(f["q"]) if not p.endswith(".json")]
        assert set(files_under(f["src"])) == {"2024-07-01_tool", "2024-02-31_tool"}

        again = _as_user(*args)  # each run says so again (--once: exit 1), and still moves nothing
        assert again.returncode == 1 and set(files_under(f["src"])) == {"2024-07-01_tool", "2024-02-31_tool"}
    finally:
        if across:
            subprocess.run(["umount", "-l", str(root / "other")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
