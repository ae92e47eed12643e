"""``reorg-tui undo`` end to end: a real engine delivers files into real folders, the real command
line (its own process) moves them back, and the engine runs again to show what it then does."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from reorg_tui.config import Settings
from tests.conftest import OLD, cli, files_under, make_settings, run_once, running, write


def deliver(settings: Settings, names: list[str], size: int = 1000) -> dict[str, bytes]:
    """Write ``names`` into the source and let the engine deliver them; returns their bytes."""
    made = {name: os.urandom(size) + name.encode() for name in names}
    for name, data in made.items():
        write(settings.source / name, data, OLD)
    run_once(settings)
    assert not any(settings.source.iterdir()), "the engine did not deliver everything"
    return made


def at_dest(settings: Settings, name: str) -> Path:
    y, m, d = name[:10].split("-")
    return settings.dest / y / m / d / name


def undo(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return cli(
        "undo",
        "--source",
        str(settings.source),
        "--state-dir",
        str(settings.state_dir),
        *args,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def batch_of(settings: Settings, target: Path) -> str:
    db = sqlite3.connect(settings.state_dir / "ledger.sqlite3")
    try:
        row = db.execute(
            "SELECT batch FROM transfers WHERE target = ? ORDER BY id DESC", (os.fsencode(target),)
        ).fetchone()
    finally:
        db.close()
    return row[0]


def undo_batch(output: str) -> str:
    found = re.search(r"^undo batch (\S+):", output, re.M)
    assert found, output
    return found.group(1)


def open_rows(settings: Settings) -> list[tuple]:
    db = sqlite3.connect(settings.state_dir / "ledger.sqlite3")
    try:
        return db.execute(
            "SELECT id, kind, step FROM transfers WHERE step IN ('intent', 'staged', 'published')"
        ).fetchall()
    finally:
        db.close()


def source_files(settings: Settings) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in settings.source.iterdir() if p.is_file()}


def test_undo_since_puts_every_file_back_byte_identical_and_empties_the_destination(tmp_path):
    settings = make_settings(tmp_path)
    names = [f"2024-03-{1 + i % 28:02d}_f{i}.bin" for i in range(120)]
    made = deliver(settings, names)

    result = undo(settings, "--since", "10m", "--yes")

    assert result.returncode == 0, result.stderr
    assert source_files(settings) == made
    assert files_under(settings.dest) == {}
    assert not (settings.dest / "2024").exists(), "the emptied date folders stay behind"
    assert "120 undone, 0 skipped" in result.stdout
    assert "undo: 120 of 120 file(s)" in result.stderr  # progress, for many files


def test_undo_batch_moves_back_that_batch_only(tmp_path):
    settings = make_settings(tmp_path)
    first = deliver(settings, ["2024-03-01_a.txt"])
    deliver(settings, ["2024-03-02_b.txt"])

    result = undo(settings, "--batch", batch_of(settings, at_dest(settings, "2024-03-01_a.txt")), "--yes")

    assert result.returncode == 0, result.stderr
    assert source_files(settings) == first
    assert at_dest(settings, "2024-03-02_b.txt").is_file()


def test_undo_paths_by_destination_or_source_path(tmp_path):
    settings = make_settings(tmp_path)
    made = deliver(settings, ["2024-03-01_a.txt", "2024-03-02_b.txt", "2024-03-03_c.txt"])

    by_dest = str(at_dest(settings, "2024-03-01_a.txt"))
    by_source = str(settings.source / "2024-03-02_b.txt")
    result = undo(settings, by_dest, by_source, "--yes")

    assert result.returncode == 0, result.stderr
    assert source_files(settings) == {n: made[n] for n in ("2024-03-01_a.txt", "2024-03-02_b.txt")}
    assert at_dest(settings, "2024-03-03_c.txt").read_bytes() == made["2024-03-03_c.txt"]


def test_an_undo_whose_source_name_is_taken_is_skipped_and_both_files_stay(tmp_path):
    settings = make_settings(tmp_path)
    made = deliver(settings, ["2024-03-01_a.txt", "2024-03-02_b.txt"])
    write(settings.source / "2024-03-01_a.txt", b"a new file under the old name")

    result = undo(settings, "--since", "1h", "--yes")

    assert result.returncode == 1
    assert (settings.source / "2024-03-01_a.txt").read_bytes() == b"a new file under the old name"
    assert at_dest(settings, "2024-03-01_a.txt").read_bytes() == made["2024-03-01_a.txt"]
    assert (settings.source / "2024-03-02_b.txt").read_bytes() == made["2024-03-02_b.txt"]
    assert not list(settings.source.glob("*(1)*")), "an undo never gives a collision name"
    assert "name taken" in result.stdout
    assert "1 undone, 1 skipped" in result.stdout


def test_an_undo_can_be_undone_and_an_undone_file_is_not_undone_twice(tmp_path):
    settings = make_settings(tmp_path)
    made = deliver(settings, ["2024-03-01_a.txt"])
    delivered = at_dest(settings, "2024-03-01_a.txt")

    first = undo(settings, "--since", "1h", "--yes")
    assert first.returncode == 0, first.stderr
    again = undo(settings, "--since", "1h", "--yes")
    assert again.returncode == 1 and "already undone" in again.stdout
    assert source_files(settings) == made

    redo = undo(settings, "--batch", undo_batch(first.stdout), "--yes")  # the undo of the undo

    assert redo.returncode == 0, redo.stderr
    assert delivered.read_bytes() == made["2024-03-01_a.txt"], "not back exactly where the undo took it from"
    assert not source_files(settings)
    # What stands now is the redelivery: undoing the deliveries again undoes that.
    third = undo(settings, "--since", "1h", "--yes")
    assert third.returncode == 0, third.stderr
    assert source_files(settings) == made and not delivered.exists()


def test_the_daemon_leaves_an_undone_file_in_the_source_until_it_changes(tmp_path):
    settings = make_settings(tmp_path)
    made = deliver(settings, ["2024-03-01_a.txt", "2024-03-02_b.txt"])
    assert undo(settings, "--since", "1h", "--yes").returncode == 0

    run_once(settings)
    assert source_files(settings) == made, "the daemon delivered an undone file again"

    path = settings.source / "2024-03-01_a.txt"
    with path.open("ab") as f:
        f.write(b" changed")
    os.utime(path, (OLD + 5, OLD + 5))
    run_once(settings)

    assert at_dest(settings, "2024-03-01_a.txt").read_bytes() == made["2024-03-01_a.txt"] + b" changed"
    assert source_files(settings) == {"2024-03-02_b.txt": made["2024-03-02_b.txt"]}


def test_undo_refuses_with_exit_3_while_a_daemon_processes_the_source(tmp_path):
    settings = make_settings(tmp_path)
    deliver(settings, ["2024-03-01_a.txt"])
    with running(settings):
        result = undo(settings, "--since", "1h", "--yes")
    assert result.returncode == 3
    assert "stop it first" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert at_dest(settings, "2024-03-01_a.txt").is_file() and not source_files(settings)


def lstat_all(*roots: Path) -> dict[str, tuple[int, ...]]:
    seen = {}
    for root in roots:
        for dirpath, dirs, names in os.walk(root):
            for name in [".", *dirs, *names]:
                st = os.lstat(os.path.join(dirpath, name))
                key = os.path.relpath(os.path.join(dirpath, name), root.parent)
                seen[key] = (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)
    return seen


def test_a_dry_run_prints_the_plan_and_changes_nothing(tmp_path):
    settings = make_settings(tmp_path)
    deliver(settings, ["2024-03-01_a.txt", "2024-03-02_b.txt"])
    write(settings.source / "2024-03-02_b.txt", b"taken")
    before = lstat_all(settings.source, settings.dest)

    result = undo(settings, "--since", "1h", "--dry-run")

    assert lstat_all(settings.source, settings.dest) == before
    assert result.returncode == 1  # one would be skipped
    assert "would undo" in result.stdout and "would skip" in result.stdout
    assert "1 would be undone, 1 skipped" in result.stdout


def test_a_delivered_file_replaced_since_is_refused_with_the_reason(tmp_path):
    settings = make_settings(tmp_path)
    made = deliver(settings, ["2024-03-01_a.txt"])
    target = at_dest(settings, "2024-03-01_a.txt")
    # Replaced by another file with the same bytes and mtime, written beside it and renamed over
    # it (as editors save): only its inode tells them apart.
    os.replace(write(target.with_name("new"), made["2024-03-01_a.txt"], OLD), target)

    result = undo(settings, str(target), "--yes")

    assert result.returncode == 1
    assert "no longer the file delivered" in result.stdout and "inode" in result.stdout
    assert target.is_file() and not source_files(settings)


def test_usage_errors_and_nothing_matched(tmp_path):
    settings = make_settings(tmp_path)
    deliver(settings, ["2024-03-01_a.txt"])

    away = undo(settings, "--since", "1h")  # no terminal, no --yes
    assert away.returncode == 2 and "--yes" in away.stderr
    both = undo(settings, "--since", "1h", "--batch", "x", "--yes")
    assert both.returncode == 2
    nothing = undo(settings, "--batch", "no-such-batch", "--yes")
    assert nothing.returncode == 4 and "nothing to undo" in nothing.stderr
    unknown = undo(settings, str(settings.dest / "2024-03-09_never.txt"), "--yes")
    assert unknown.returncode == 4 and "is recorded" in unknown.stderr
    assert at_dest(settings, "2024-03-01_a.txt").is_file()


def test_undo_across_filesystems_copies_back_and_leaves_no_staging(tmp_path, tmpfs):
    other = tmpfs("other")
    settings = make_settings(tmp_path, dest=other / "dst", quarantine=other / "q")
    made = deliver(settings, ["2024-03-01_a.bin", "2024-03-02_b.bin"], size=300_000)

    result = undo(settings, "--since", "1h", "--yes")

    assert result.returncode == 0, result.stderr
    assert source_files(settings) == made
    assert files_under(settings.dest) == {}
    assert not (settings.source / ".reorg-tmp").exists()
    redo = undo(settings, "--batch", undo_batch(result.stdout), "--yes")
    assert redo.returncode == 0, redo.stderr
    assert at_dest(settings, "2024-03-01_a.bin").read_bytes() == made["2024-03-01_a.bin"]
    assert not source_files(settings)


COPY_STEPS = ["intent", "copied", "staged", "published", "recorded", "removed"]


@pytest.mark.parametrize("step", COPY_STEPS)
def test_a_crash_during_an_undo_copy_is_recovered_at_the_daemons_start_the_file_once(tmp_path, tmpfs, step):
    other = tmpfs("other")
    settings = make_settings(tmp_path, dest=other / "dst", quarantine=other / "q")
    made = deliver(settings, ["2024-03-01_a.bin"], size=200_000)

    crashed = undo(settings, "--since", "1h", "--yes", env={"REORG_STOP_AT": f"{step}:1"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    run_once(settings)  # the daemon's start recovers the undo's open row
    everywhere = [*files_under(settings.source).values(), *files_under(settings.dest).values()]
    assert everywhere == [hashlib.sha256(made["2024-03-01_a.bin"]).hexdigest()], "not exactly once"
    assert not open_rows(settings)
    staging = settings.source / ".reorg-tmp"
    assert not staging.is_dir() or not any(staging.iterdir()), "a staging copy was left in the source"
    published = step in ("published", "recorded", "removed")
    if published:  # the undo had put it in the source: it stays there
        assert source_files(settings) == made
    else:  # withdrawn: it is at its destination alone
        assert at_dest(settings, "2024-03-01_a.bin").read_bytes() == made["2024-03-01_a.bin"]
    run_once(settings)
    assert (source_files(settings) == made) == published, "a recovered undo was delivered again"


def test_undo_itself_recovers_an_interrupted_undo_before_it_plans(tmp_path, tmpfs):
    other = tmpfs("other")
    settings = make_settings(tmp_path, dest=other / "dst", quarantine=other / "q")
    made = deliver(settings, ["2024-03-01_a.bin"], size=200_000)
    crashed = undo(settings, "--since", "1h", "--yes", env={"REORG_STOP_AT": "published:1"})
    assert crashed.returncode == -signal.SIGKILL  # published in the source, still at the destination

    again = undo(settings, "--since", "1h", "--yes")

    assert "recovered from an interrupted run: finished 1" in again.stderr
    assert again.returncode == 1 and "already undone" in again.stdout  # the recovered undo counts
    assert source_files(settings) == made and files_under(settings.dest) == {}
    assert not open_rows(settings)
