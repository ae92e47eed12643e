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
