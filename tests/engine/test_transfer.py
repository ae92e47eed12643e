"""The transfer protocol against a source that changes under a copy: renamed away, rewritten in
place with its mtime set back, truncated, at each step of the copy. Never published in a mixed or
stale state, never in two places; delivered whole once it holds still again.

The change is made from inside the protocol (engine/steps.py ``watch``), at the named step, in
the mover's own thread: the copy cannot finish first.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from reorg_tui.engine import steps
from tests.conftest import OLD, files_under, make_settings, run_once, write

DATA = os.urandom(64 * 1024)
NAME = "2024-05-06_report.bin"


def strike_once(at: str, change):
    done = []

    def watcher(step: str) -> None:
        if step == at and not done:
            done.append(step)
            change()

    return watcher, done


def rows(state: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(state / "ledger.sqlite3")
    try:
        return db.execute("SELECT kind, step FROM transfers ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.fixture
def across(tmp_path, tmpfs):
    other = tmpfs("other")
    settings = make_settings(tmp_path, dest=other / "dest", quarantine=other / "q", settle=0.0)
    return settings


@pytest.mark.parametrize("at", ["copied", "staged", "recorded"])
def test_a_source_rewritten_in_place_with_its_mtime_set_back_is_never_published_stale(across, at):
    src = write(across.source / NAME, DATA, OLD)
    new = bytes(reversed(DATA))  # the same size, other bytes

    def rewrite() -> None:
        before = os.stat(src)
        with open(src, "r+b") as f:
            f.write(new)
        os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back: ctime moved

    watcher, struck = strike_once(at, rewrite)
    with steps.watch(watcher):
        run_once(across)
    assert struck
    run_once(across)  # it holds still now: delivered

    assert files_under(across.source) == {}
    [(path, _)] = files_under(across.dest).items()
    assert path == f"2024/05/06/{NAME}"  # once, under its own name: no stale copy kept beside it
    assert (across.dest / path).read_bytes() == new
    assert not list((across.dest / ".reorg-tmp").glob("*"))
    assert ("deliver", "withdrawn") in rows(across.state_dir)
    assert rows(across.state_dir)[-1] == ("deliver", "done")


@pytest.mark.parametrize("at", ["copied", "staged", "recorded"])
def test_a_source_truncated_during_its_copy_is_delivered_whole_as_it_is_after(across, at):
    src = write(across.source / NAME, DATA, OLD)
    watcher, struck = strike_once(at, lambda: os.truncate(src, 100))
    with steps.watch(watcher):
        run_once(across)
    assert struck
    run_once(across)

    [(path, _)] = files_under(across.dest).items()
    assert (across.dest / path).read_bytes() == DATA[:100]
    assert files_under(across.source) == {}


@pytest.mark.parametrize("at", ["copied", "staged", "recorded"])
def test_a_source_renamed_away_during_its_copy_is_not_published_and_stays_where_it_went(across, at):
    src = write(across.source / NAME, DATA, OLD)
    away = across.source / ".taken-by-someone-else"  # a name the scan ignores
    watcher, struck = strike_once(at, lambda: os.rename(src, away))
    with steps.watch(watcher):
        run_once(across)
    assert struck

    assert files_under(across.dest) == {}  # no second copy of a file that lives on elsewhere
    assert away.read_bytes() == DATA
    assert not list((across.dest / ".reorg-tmp").glob("*"))
    assert rows(across.state_dir)[-1] == ("deliver", "withdrawn")


def test_a_source_replaced_by_another_file_under_its_name_during_the_copy_moves_the_new_one(across):
    src = write(across.source / NAME, DATA, OLD)
    other = b"a different file that took the name"

    def replace() -> None:
        os.rename(src, across.source / ".old")
        write(src, other, OLD)

    watcher, struck = strike_once("staged", replace)
    with steps.watch(watcher):
        run_once(across)
    assert struck
    run_once(across)
    [(path, _)] = files_under(across.dest).items()
    assert (across.dest / path).read_bytes() == other  # the new file, whole; the old one stays aside
    assert (across.source / ".old").read_bytes() == DATA


def test_a_file_deleted_from_the_source_after_its_copy_was_published_is_kept_at_the_destination(across):
    src = write(across.source / NAME, DATA, OLD)
    watcher, struck = strike_once("recorded", lambda: os.unlink(src))
    with steps.watch(watcher):
        run_once(across)
    assert struck
    [(path, _)] = files_under(across.dest).items()
    assert (across.dest / path).read_bytes() == DATA  # published: never deleted after that
    assert rows(across.state_dir)[-1] == ("deliver", "done")
