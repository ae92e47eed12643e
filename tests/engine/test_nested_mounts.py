"""A destination folder that is a filesystem of its own (a tmpfs per year, as a btrfs subvolume
or a disk per year would be): the files for it are copied, staged on its own filesystem, and
every other file is still renamed. Made for real with a tmpfs mounted inside the destination."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from reorg_tui.engine import events as ev
from reorg_tui.engine import steps
from tests.conftest import OLD, files_under, make_settings, run_once, write
from tests.integration.test_crash_steps import (
    COPY_STEPS,
    check_once_each,
    contents,
    files,
    layout,
    run,
    staging_leftovers,
)

YEARS = ("2023", "2024", "2025")


def _mixed_source(source: Path, each: int) -> dict[str, str]:
    """Files for every year, interleaved by name, so that a 2024 file comes first in a listing
    as often as any other. Returns name -> where it must arrive."""
    expected = {}
    for n in range(each):
        for year in YEARS:
            name = f"{year}-0{1 + n % 9}-1{n % 10}_f{n:03d}.bin"
            write(source / name, os.urandom(4096 + n), OLD)
            expected[name] = f"{year}/0{1 + n % 9}/1{n % 10}/{name}"
    return expected


def test_a_date_folder_that_is_its_own_mount_is_copied_there_and_the_other_years_still_renamed(
    tmp_path, tmpfs
):
    settings = make_settings(tmp_path, settle=0.0)
    year = tmpfs("dest/2024")  # DEST itself is on the root's filesystem, DEST/2024 is not
    expected = _mixed_source(settings.source, 20)
    before = {name: digest for name, digest in files_under(settings.source).items()}
    inodes = {name: os.stat(settings.source / name).st_ino for name in expected}
    staged_in: list[set[str]] = []
    lock = threading.Lock()

    def where_staged(step: str) -> None:
        if step == "staged":  # the copy is whole in staging: which staging folder holds it?
            with lock:
                staged_in.append(
                    {str(p.parent.relative_to(settings.dest)) for p in settings.dest.rglob("*.part")}
                )

    with steps.watch(where_staged):
        engine, rec = run_once(settings)

    assert not rec.of(ev.Quarantined) and not rec.of(ev.Failed) and not rec.of(ev.Retried)
    assert files_under(settings.source) == {}
    arrived = files_under(settings.dest)
    assert arrived == {expected[name]: digest for name, digest in before.items()}  # bytes intact
    how = {Path(e.destination).name: e.how for e in rec.of(ev.Moved)}
    for name, path in expected.items():
        if path.startswith("2024/"):
            assert how[name] == "copied", name
        else:
            assert how[name] == "moved", name  # one folder's mount changes nothing for the rest
            assert os.stat(settings.dest / path).st_ino == inodes[name]  # renamed: the same inode
    # Each copy was staged on the 2024 filesystem, never on DEST's (a rename across would fail).
    assert len(staged_in) == 20 and all(s == {"2024/.reorg-tmp"} for s in staged_in)
    assert not (settings.dest / ".reorg-tmp").exists()
    assert os.stat(year / ".reorg-tmp").st_dev == os.stat(year).st_dev
    assert not list((year / ".reorg-tmp").iterdir())  # nothing left behind in staging


@pytest.mark.parametrize("step", COPY_STEPS)
def test_a_crash_at_each_step_of_a_copy_into_a_nested_mount_leaves_every_file_exactly_once(
    tmp_path, tmpfs, step
):
    # The staging folder is DEST/2024/.reorg-tmp here: recovery must know it for one of the
    # mover's (its ledger rows name it), and the sweep must find the partial copies in it.
    paths = layout(tmp_path, tmpfs, across=False)
    year = tmpfs("dst/2024")
    expected = files(paths, "deliver")

    assert run(paths, f"{step}:2") == -signal.SIGKILL, "the daemon did not stop at the step"
    assert run(paths, None) == 0
    check_once_each(paths, expected)
    assert len(contents(year)) == 3 and not contents(paths["src"])
    assert staging_leftovers(year) == []


def test_a_partial_copy_a_crash_left_in_a_nested_mount_is_swept(tmp_path, tmpfs):
    settings = make_settings(tmp_path)
    year = tmpfs("dest/2024")
    dead = write(year / f".reorg-tmp/{2**22 + 1}-deadbeef-0.part", b"half a fi")  # no such pid
    users = write(year / ".reorg-tmp/notes.txt", b"someone's own file")
    run_once(settings)
    assert not dead.exists() and users.read_bytes() == b"someone's own file"
