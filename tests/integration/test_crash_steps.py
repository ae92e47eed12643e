"""A crash exactly between two steps of the transfer protocol, for every step, each transfer kind
the daemon makes (deliver, quarantine) and both layouts (one filesystem, and across two).

The real daemon (``--once``) runs with ``REORG_STOP_AT=STEP:N``: it SIGKILLs itself the Nth time
the protocol reaches STEP (engine/steps.py), so the crash lands exactly there, not wherever a
random kill finds. It is then run again, as a supervisor would, and the disk must show every file
exactly once (a sha256 manifest over source, destination and quarantine), no staging leftovers,
and a ledger with no open rows that agrees with the disk.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, write

COPY_STEPS = ["intent", "copied", "staged", "published", "recorded", "removed"]


def contents(*roots: Path) -> list[str]:
    """sha256 of every regular file below the roots (quarantine records and the state aside)."""
    found = []
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                if path.suffix == ".json" and root.name == "q":
                    continue
                if path.is_file() and not path.is_symlink():
                    found.append(hashlib.sha256(path.read_bytes()).hexdigest())
    return sorted(found)


def staging_leftovers(*roots: Path) -> list[str]:
    return [
        str(p) for root in roots for p in (root / ".reorg-tmp").glob("*") if (root / ".reorg-tmp").is_dir()
    ]


def ledger_rows(state: Path) -> list[tuple]:
    db = sqlite3.connect(state / "ledger.sqlite3")
    try:
        return db.execute("SELECT kind, step, source, target FROM transfers ORDER BY id").fetchall()
    finally:
        db.close()


def layout(tmp_path: Path, tmpfs, across: bool) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    other = tmpfs("other") if across else tmp_path
    dst, q = other / "dst", other / "q"
    dst.mkdir()
    q.mkdir()  # a quarantine that is named must exist
    return {"src": src, "dst": dst, "q": q, "state": tmp_path / "state"}


def run(paths: dict[str, Path], stop_at: str | None) -> int:
    env = {"REORG_STOP_AT": stop_at} if stop_at else {}
    result = cli(
        "--once",
        "-s",
        str(paths["src"]),
        "-d",
        str(paths["dst"]),
        "--quarantine",
        str(paths["q"]),
        "--state-dir",
        str(paths["state"]),
        "--settle",
        "0",
        "--workers",
        "1",
        "--batch-size",
        "2",
        env=env,
    )
    return result.returncode


def check_once_each(paths: dict[str, Path], expected: list[str]) -> None:
    assert contents(paths["src"], paths["dst"], paths["q"]) == expected, "a file is lost or in two places"
    assert not staging_leftovers(paths["dst"], paths["q"], paths["src"])
    if paths["q"].is_dir():  # every quarantined file has its record beside it
        for item in paths["q"].iterdir():
            if item.is_dir() and item.name != ".reorg-tmp" and any(item.iterdir()):
                assert (paths["q"] / f"{item.name}.json").is_file(), f"{item} has no record"
    rows = ledger_rows(paths["state"])
    assert not [r for r in rows if r[1] in ("intent", "staged", "published")], rows
    for i, (kind, step, _source, target) in enumerate(rows):
        moved_on = any(later[2] == target and later[1] == "done" for later in rows[i + 1 :])
        if step == "done" and not moved_on:  # (a release took it on from the quarantine, say)
            assert os.path.lexists(os.fsdecode(target)), f"ledger says {kind} done, disk disagrees: {target}"


def files(paths: dict[str, Path], kind: str) -> list[str]:
    """Three files of the kind the test makes move; returns the sorted manifest."""
    made = []
    for i in range(3):
        name = f"2024-02-{10 + i}_f{i}.bin" if kind == "deliver" else f"2024-02-31_bad{i}.bin"
        made.append(write(paths["src"] / name, os.urandom(4096 + i), OLD))
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in made)


@pytest.mark.parametrize("kind", ["deliver", "quarantine"])
@pytest.mark.parametrize("step", COPY_STEPS)
@pytest.mark.parametrize("nth", [1, 2])
def test_a_crash_at_each_step_of_a_copy_leaves_every_file_exactly_once(tmp_path, tmpfs, kind, step, nth):
    paths = layout(tmp_path, tmpfs, across=True)
    expected = files(paths, kind)

    assert run(paths, f"{step}:{nth}") == -signal.SIGKILL, "the daemon did not stop at the step"
    # Right after the crash, before any recovery: nothing is lost (a copy may be in two places).
    assert set(expected) <= set(contents(paths["src"], paths["dst"], paths["q"]))

    code = run(paths, None)
    assert code in ((0,) if kind == "deliver" else (0, 1))  # 1: this run quarantined some
    check_once_each(paths, expected)
    where = paths["dst"] if kind == "deliver" else paths["q"]
    assert len(contents(where)) == 3 and not contents(paths["src"])


@pytest.mark.parametrize("kind", ["deliver", "quarantine"])
@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_crash_right_after_a_rename_leaves_every_file_exactly_once(tmp_path, tmpfs, kind, nth):
    paths = layout(tmp_path, tmpfs, across=False)
    expected = files(paths, kind)

    assert run(paths, f"renamed:{nth}") == -signal.SIGKILL
    code = run(paths, None)
    assert code in ((0,) if kind == "deliver" else (0, 1))  # 1: this run quarantined some
    check_once_each(paths, expected)
    where = paths["dst"] if kind == "deliver" else paths["q"]
    assert len(contents(where)) == 3 and not contents(paths["src"])


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "T"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("step", ["intent", "staged", "recorded"])
def test_two_daemons_sharing_a_destination_and_quarantine_leave_each_others_work_alone(tmp_path, tmpfs, step):
    """Daemon A stalls (SIGSTOP) mid-copy with its staging file in the shared staging folder;
    daemon B, on another source, starts (its recovery runs), delivers and quarantines its own
    files and stops. A then wakes and finishes: every file of both exactly once."""
    import subprocess
    import sys
    import time

    other = tmpfs("other")
    shared = {"dst": other / "dst", "q": other / "q"}
    shared["dst"].mkdir()
    shared["q"].mkdir()
    a = {"src": tmp_path / "a", "state": tmp_path / "state-a", **shared}
    b = {"src": tmp_path / "b", "state": tmp_path / "state-b", **shared}
    for d in (a, b):
        d["src"].mkdir()
    mine = [write(a["src"] / "2024-03-01_a.bin", os.urandom(8192), OLD)]
    theirs = [write(b["src"] / f"2024-03-0{i}_b.bin", os.urandom(8192), OLD) for i in (1, 2)]
    theirs.append(write(b["src"] / "2024-02-30_b.bin", os.urandom(100), OLD))  # quarantined
    expected = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in mine + theirs)

    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    env["REORG_STOP_AT"] = f"{step}:1:pause"
    args = ["--once", "-s", str(a["src"]), "-d", str(a["dst"]), "--quarantine", str(a["q"])]
    args += ["--state-dir", str(a["state"]), "--settle", "0", "--workers", "1"]
    stalled = subprocess.Popen([sys.executable, "-m", "reorg_tui", *args], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not _stopped(stalled.pid):
            assert stalled.poll() is None and time.monotonic() < deadline, "A never reached the step"
            time.sleep(0.02)
        in_progress = staging_leftovers(shared["dst"])
        assert step == "recorded" or in_progress, (  # A's copy sits in the shared staging folder
            sorted(str(p) for p in shared["dst"].rglob("*")),
            ledger_rows(a["state"]),
        )

        assert run(b, None) == 1  # B: its own moved, one quarantined (exit 1)
        assert staging_leftovers(shared["dst"]) == in_progress  # B's start left A's copy alone
    finally:
        os.kill(stalled.pid, signal.SIGCONT)
        assert stalled.wait(timeout=30) == 0, stalled.stderr.read() if stalled.stderr else ""
    assert contents(a["src"], b["src"], shared["dst"], shared["q"]) == expected
    assert not staging_leftovers(shared["dst"], shared["q"])
    assert files_of(shared["dst"]) == 3 and files_of(shared["q"], records=False) == 1


def files_of(root: Path, records: bool = True) -> int:
    return sum(
        1
        for p in root.rglob("*")
        if p.is_file() and ".reorg-tmp" not in p.parts and (records or p.suffix != ".json")
    )


@pytest.mark.parametrize("step", COPY_STEPS)
def test_a_crash_at_each_step_of_a_release_from_the_command_line_leaves_the_file_exactly_once(
    tmp_path, tmpfs, step
):
    """`quarantine release` run by an operator with no daemon up, the quarantine on another
    filesystem than the source (the copy back is staged in the source): killed at each step,
    then the daemon's next start finishes or withdraws it from the ledger."""
    paths = layout(tmp_path, tmpfs, across=True)
    expected = files(paths, "quarantine")  # impossible dates: quarantined, then released
    assert run(paths, None) == 1
    item = sorted(p.name for p in paths["q"].iterdir() if p.is_dir() and p.name != ".reorg-tmp")[0]
    env = {"REORG_STOP_AT": f"{step}:1", "REORG_STATE_DIR": str(paths["state"])}
    where = ["-q", str(paths["q"]), "-s", str(paths["src"])]
    released = cli("quarantine", "release", item, *where, env=env)
    assert released.returncode == -signal.SIGKILL, released.stderr
    assert set(expected) <= set(contents(paths["src"], paths["dst"], paths["q"]))  # nothing lost yet

    run(paths, None)  # recovery, then the released file through the pipeline again

    check_once_each(paths, expected)
    assert not staging_leftovers(paths["src"])
