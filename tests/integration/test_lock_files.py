"""The lock files of a source (``path.lock``, and for shards ``shards.lock``, ``shards-of-N.lock``
and ``shard-K-of-N.lock``, in this user's default state folder for the source) are input from
the filesystem: anything but a regular file there (a FIFO, a folder, a symlink) is refused at
once, one line, exit 2, never a hang nor exit 1. And a shard that cannot take its shard locks
refuses (exit 2): it never runs unguarded beside a second copy of itself or shards of another N.
Real daemons (``--once`` and watching), real FIFOs, folders and symlinks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reorg_tui.engine.locate import default_state_dir
from tests.conftest import OLD, cli, refused, wait_for, write
from tests.integration.conftest import STARTED


def _folders(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("src", "dest", "q", "state")}
    for name in ("src", "dest", "q"):
        paths[name].mkdir()
    write(paths["src"] / "2024-03-01_a.txt", b"a\n", OLD)
    return paths


def _args(paths: dict[str, Path], *extra: str) -> list[str]:
    return [
        *("-s", str(paths["src"]), "-d", str(paths["dest"]), "--quarantine", str(paths["q"])),
        *("--state-dir", str(paths["state"]), "--settle", "0", *extra),
    ]


def _plant(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(path.parent / "elsewhere.lock")


LOCKS = [
    (None, "path.lock"),
    ("0/2", "path.lock"),
    ("0/2", "shards.lock"),
    ("0/2", "shards-of-2.lock"),
    ("0/2", "shard-0-of-2.lock"),
]


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink"])
@pytest.mark.parametrize(("shard", "name"), LOCKS, ids=[f"{s or 'unsharded'}-{n}" for s, n in LOCKS])
def test_a_lock_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path, shard, name, kind):
    """A FIFO used to hang the start for ever (a blocking open, retried after SIGTERM's handler);
    a folder or a symlink gave `Is a directory` or ELOOP with exit 1 (files left)."""
    paths = _folders(tmp_path)
    planted = default_state_dir(paths["src"]) / name
    _plant(planted, kind)
    extra = ("--shard", shard) if shard else ()
    result = cli("--once", *_args(paths, *extra), timeout=30)  # a hang fails here
    refused(result, str(planted), "not a regular file", "remove it")
    assert (paths["src"] / "2024-03-01_a.txt").read_bytes() == b"a\n"  # nothing moved unguarded
    assert not any(paths["dest"].iterdir())


def test_a_daemon_refused_for_a_fifo_is_not_left_waiting_for_a_signal(tmp_path):
    """A watching daemon with a FIFO at its shard's lock refuses by itself: no writer ever opens
    the FIFO, so a blocking open would wait for ever, and SIGTERM would not end it."""
    paths = _folders(tmp_path)
    planted = default_state_dir(paths["src"]) / "shard-1-of-2.lock"
    _plant(planted, "fifo")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", *_args(paths, "--shard", "1/2")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("REORG_")},
    )
    STARTED.append(proc)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=5)
            pytest.fail("the daemon hung on the FIFO (it stopped on SIGTERM)")
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the daemon hung on the FIFO, and SIGTERM did not stop it")
    assert proc.returncode == 2, err
    [line] = err.strip().splitlines()
    assert str(planted) in line and "not a regular file" in line


def test_a_shard_whose_locks_cannot_be_made_refuses_rather_than_run_unguarded(tmp_path):
    """A home where nothing can be made (a path below a file: ENOTDIR, which holds for root too):
    an instance without --shard runs on with a warning (its folder lock still keeps a second one
    out), but a shard's only guard against a second copy of itself with another --state-dir, or
    shards of another N, is its shard locks: it refuses, one line, exit 2, and moves nothing."""
    paths = _folders(tmp_path)
    result = cli("--once", *_args(paths, "--shard", "0/1"), env={"XDG_STATE_HOME": "/dev/null/state"})
    refused(result, f"shard 0/1 cannot take its locks on {paths['src']}", "/dev/null/state/reorg-tui/")
    assert (paths["src"] / "2024-03-01_a.txt").exists() and not any(paths["dest"].iterdir())
    unsharded = cli("--once", *_args(paths), env={"XDG_STATE_HOME": "/dev/null/state"})
    assert unsharded.returncode == 0, unsharded.stderr
    assert "cannot lock the path" in unsharded.stderr


def test_asking_whether_a_source_is_held_never_takes_its_lock(tmp_path):
    """The dashboard without --shard (and `undo --dry-run`) asks whether an instance holds the
    source before it attaches or runs one. Asking used to take the source's lock for an instant
    where /proc/locks named no holder, that is, exactly when an instance might be starting: it
    then refused, "already processing" (pid of the dashboard). A child stands in for that start,
    trying the source's lock without blocking, while this process asks 3,000 times: it must
    never find it taken. Then a real daemon holds it: seen."""
    from reorg_tui.engine.lock import source_is_locked
    from tests.integration.test_shards import _SPINNER

    paths = _folders(tmp_path)
    done = tmp_path / "done"
    spinner = subprocess.Popen(
        [sys.executable, "-c", _SPINNER, str(paths["src"]), str(done)], stdout=subprocess.PIPE, text=True
    )
    STARTED.append(spinner)
    assert spinner.stdout is not None and spinner.stdout.readline() == "ready\n"
    for _ in range(3000):
        source_is_locked(paths["src"])
    done.touch()
    out, _ = spinner.communicate(timeout=30)
    taken, found_held = map(int, out.split())
    assert taken > 0
    assert found_held == 0, f"a starting instance found the source taken {found_held} time(s) by a look"

    assert not source_is_locked(paths["src"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", "--headless", *_args(paths)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("REORG_")},
    )
    STARTED.append(proc)
    wait_for(lambda: source_is_locked(paths["src"]) or proc.poll() is not None, what="the daemon to start")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not source_is_locked(paths["src"])
