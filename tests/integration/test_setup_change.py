"""A crash, then the same source started under another setup: without --shard after shards,
with --shard after none, or shards of another N. A crash between publishing a cross-filesystem
copy and removing its source leaves an open ledger row, and only a start that reads that ledger
finishes it: a shard keeps its ledger in a folder of its own (``shard-K-of-N``), so the row used
to be read by nobody, the file's new owner moved its source copy again, and the destination held
``x.txt`` and ``x (1).txt``. Each start now finishes the other setups' open transfers first (or,
where they name folders it does not use, refuses: exit 3, one line, saying how).

Real daemons (``--once``), killed at the exact step with ``REORG_STOP_AT`` (engine/steps.py),
the destination and quarantine on a tmpfs of their own (a copy, not a rename).
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

from reorg_tui.engine.shard import shard_of
from tests.conftest import OLD, cli, refused, write
from tests.integration.test_crash_steps import contents, layout, ledger_rows, staging_leftovers

NAMES = [f"2024-02-1{i}_f{i}.bin" for i in range(6)]


def _files(paths: dict[str, Path]) -> list[str]:
    made = [write(paths["src"] / name, os.urandom(4096 + i), OLD) for i, name in enumerate(NAMES)]
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in made)


def _run(paths: dict[str, Path], *extra: str, stop_at: str | None = None, dest: Path | None = None):
    env = {"REORG_STOP_AT": stop_at} if stop_at else {}
    return cli(
        *("--once", "-s", str(paths["src"]), "-d", str(dest or paths["dst"])),
        *("--quarantine", str(paths["q"]), "--state-dir", str(paths["state"])),
        *("--settle", "0", "--workers", "1", "--batch-size", "2", *extra),
        env=env,
    )


def _open_rows(state: Path) -> list[tuple]:
    return [r for r in ledger_rows(state) if r[1] in ("intent", "staged", "published")]


def _once_each(paths: dict[str, Path], expected: list[str]) -> None:
    assert contents(paths["src"], paths["dst"], paths["q"]) == expected, "a file is lost or in two places"
    assert sorted(p.name for p in paths["dst"].rglob("*") if p.is_file()) == sorted(NAMES)
    assert not staging_leftovers(paths["dst"], paths["q"], paths["src"])


def test_a_crash_without_shards_then_a_shard_finishes_the_open_transfer_first(tmp_path, tmpfs):
    """The reviewer's repro: an unsharded --once killed after its copy was published and
    recorded, before the source was removed; then --shard 0/1."""
    paths = layout(tmp_path, tmpfs, across=True)
    expected = _files(paths)
    crashed = _run(paths, stop_at="recorded:1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert len(_open_rows(paths["state"])) == 1

    after = _run(paths, "--shard", "0/1")
    assert after.returncode == 0, after.stderr
    assert "finished 1 and withdrew 0 transfer(s) that an earlier run" in after.stderr, after.stderr
    _once_each(paths, expected)  # not x.txt and x (1).txt
    assert _open_rows(paths["state"]) == []  # the old setup's ledger says what happened


def test_a_crashed_shard_then_no_shards_or_another_n_finishes_it_first(tmp_path, tmpfs):
    """Shard 0/2 killed mid-transfer, then shard 1/3 (whichever shard starts first finishes it,
    whether the file is its own under the new N or not), then the rest without --shard."""
    paths = layout(tmp_path, tmpfs, across=True)
    expected = _files(paths)
    assert sum(shard_of(name, 2) == 0 for name in NAMES) >= 2  # it has files to crash on
    crashed = _run(paths, "--shard", "0/2", stop_at="recorded:1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert len(_open_rows(paths["state"] / "shard-0-of-2")) == 1

    assert _run(paths, "--shard", "1/3").returncode == 0
    assert _open_rows(paths["state"] / "shard-0-of-2") == []
    assert _run(paths).returncode == 0  # the rest, without --shard
    _once_each(paths, expected)


def test_an_open_transfer_to_a_folder_this_setup_does_not_use_is_refused_with_what_to_do(tmp_path, tmpfs):
    """Its copy was published to another destination: this setup cannot finish it (recovery
    touches only its own folders), and moving the source copy would leave the file in two
    places. Refused, exit 3, one line naming the folder; the old setup run once finishes it."""
    paths = layout(tmp_path, tmpfs, across=True)
    expected = _files(paths)
    crashed = _run(paths, stop_at="recorded:1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    elsewhere = paths["dst"].parent / "dst2"
    elsewhere.mkdir()

    result = _run(paths, "--shard", "0/1", dest=elsewhere)
    refused(result, str(paths["state"]), "1 transfer(s)", "without --shard", "--once", code=3)
    assert not any(elsewhere.iterdir())  # nothing moved beside an unfinished transfer
    assert len(_open_rows(paths["state"])) == 1

    assert _run(paths).returncode == 0  # the old setup, once: it finishes and moves the rest
    _once_each(paths, expected)
    assert _run(paths, "--shard", "0/1", dest=elsewhere).returncode == 0  # and now it runs


def test_a_shard_starting_while_another_finishes_the_old_rows_waits_for_it(tmp_path, tmpfs):
    """The other setups' rows are finished under shards.lock: a shard that starts while another
    finishes them waits for it, rather than skipping the folder that other holds and moving the
    source copy again. Shard A is stopped (SIGSTOP, ``recovering:1:pause``) in the middle of
    finishing the old row; shard B, the owner of that row's file, started meanwhile, waits, then
    gives up as any shard does after shards.lock's wait (exit 3), having moved nothing. Once A
    goes on, B runs: every file once."""
    import subprocess
    import sys
    import time

    from tests.integration.conftest import STARTED
    from tests.integration.test_crash_steps import _stopped

    paths = layout(tmp_path, tmpfs, across=True)
    expected = _files(paths)
    assert _run(paths, stop_at="recorded:1").returncode == -signal.SIGKILL
    [row] = _open_rows(paths["state"])
    b = shard_of(os.path.basename(os.fsdecode(row[2])), 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
    args = ["--once", "-s", str(paths["src"]), "-d", str(paths["dst"]), "--quarantine", str(paths["q"])]
    args += ["--state-dir", str(paths["state"]), "--settle", "0", "--shard", f"{1 - b}/2"]
    first = subprocess.Popen(
        [sys.executable, "-m", "reorg_tui", *args],
        env={**env, "REORG_STOP_AT": "recovering:1:pause"},
        stderr=subprocess.PIPE,
        text=True,
    )
    STARTED.append(first)
    deadline = time.monotonic() + 30
    while not _stopped(first.pid):
        assert first.poll() is None and time.monotonic() < deadline, "A never reached the old row"
        time.sleep(0.02)
    published = contents(paths["dst"])

    second = _run(paths, "--shard", f"{b}/2")
    assert second.returncode == 3, second.stderr
    [line] = second.stderr.strip().splitlines()
    assert "has been starting for 10s and holds" in line and "shards.lock" in line
    assert contents(paths["dst"]) == published  # not x.txt and x (1).txt
    os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=30) == 0, first.stderr.read() if first.stderr else ""
    assert _open_rows(paths["state"]) == []
    assert _run(paths, "--shard", f"{b}/2").returncode == 0
    _once_each(paths, expected)
