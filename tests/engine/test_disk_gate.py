"""The disk gate on real filesystems: a small tmpfs (1 MiB, 200 inodes) whose every page and inode
is accounted for, filled and emptied by the test, unmounted and mounted again."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reorg_tui.engine.disk import HYSTERESIS_PERCENT, DiskGate

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs, which needs root")


@pytest.fixture
def small(tmpfs) -> Path:
    return tmpfs("dest", size="1M", inodes=200)


def pages(dest: Path) -> tuple[int, int]:
    """(page size, pages in the filesystem)"""
    st = os.statvfs(dest)
    return st.f_frsize, st.f_blocks


def use(dest: Path, used: int) -> float:
    """Make the ballast file take ``used`` pages; the free percentage that leaves."""
    size, total = pages(dest)
    (dest / "ballast").write_bytes(b"\0" * (used * size))
    st = os.statvfs(dest)
    assert st.f_bavail == total - used, "tmpfs counts pages exactly"
    return 100.0 * st.f_bavail / total


def make_files(dest: Path, count: int) -> None:
    folder = dest / "many"
    folder.mkdir(exist_ok=True)
    start = len(os.listdir(folder))
    for i in range(start, start + count):
        (folder / str(i)).touch()


def remove_files(dest: Path, count: int) -> None:
    folder = dest / "many"
    for name in sorted(os.listdir(folder))[:count]:
        (folder / name).unlink()


@pytest.mark.needs_root
@root_only
def test_intake_pauses_under_the_minimum_and_resumes_only_clearly_above_it(small):
    _, total = pages(small)
    minimum = 50.0
    gate = DiskGate(str(small), minimum)
    assert gate.check() and not gate.closed

    half = total // 2
    assert use(small, half) == minimum
    assert gate.check(), "exactly the minimum free is enough"

    assert use(small, half + 1) < minimum
    assert not gate.check() and gate.closed
    assert gate.error is None  # short of space: the engine words that reason itself
    assert gate.last is not None and gate.last.free_percent < minimum

    # Back above the minimum, but not by HYSTERESIS_PERCENT: it stays closed, so it cannot flap.
    just_above = half - 2
    assert minimum < use(small, just_above) < minimum + HYSTERESIS_PERCENT
    assert not gate.check()

    clearly_above = half - 3
    assert use(small, clearly_above) >= minimum + HYSTERESIS_PERCENT
    assert gate.check() and not gate.closed

    # Open again, it closes only under the minimum itself.
    assert minimum < use(small, just_above) < minimum + HYSTERESIS_PERCENT
    assert gate.check()


@pytest.mark.needs_root
@root_only
def test_running_out_of_inodes_pauses_intake_and_says_so(small):
    gate = DiskGate(str(small), 10.0)  # 10% of 200 inodes: at least 20 free
    assert gate.check()
    free = os.statvfs(small).f_favail
    make_files(small, free - 19 - 1)  # the folder "many" takes one
    assert os.statvfs(small).f_favail == 19
    assert not gate.check()
    assert gate.error == "destination has 19 free inodes (9.5%), under the 10% minimum"
    assert gate.last is not None and gate.last.free_percent > 99  # plenty of bytes

    remove_files(small, 1)  # 20 free: the minimum, but not 1% above it
    assert not gate.check()
    remove_files(small, 2)  # 22 free: 11%
    assert gate.check()
    assert gate.error is None


@pytest.mark.needs_root
@root_only
def test_an_unmounted_destination_holds_intake_and_a_remount_is_a_new_generation(small, tmpfs):
    gate = DiskGate(str(small), 10.0)
    assert gate.check() and gate.generation == 0
    before = gate.last
    # A folder descriptor the mover still holds on the old filesystem (which keeps it alive, so
    # the new one gets another device number; with nothing held, the number may come back).
    held = os.open(small, os.O_RDONLY | os.O_DIRECTORY)
    try:
        subprocess.run(["umount", "-l", str(small)], check=True)
        assert not gate.check()
        assert gate.error == f"destination {small} is not mounted: intake waits until it is back"
        assert gate.last == before  # the last good reading stays on show
        assert gate.generation == 0

        tmpfs("dest", size="1M", inodes=200)  # mounted again: a new filesystem
        assert gate.check() and gate.error is None
        assert gate.generation == 1  # the descriptor held on the old one must not be used
        assert gate.check() and gate.generation == 1
    finally:
        os.close(held)


@pytest.mark.needs_root
@root_only
def test_a_filesystem_mounted_over_a_plain_destination_folder_is_a_new_generation(tmp_path, tmpfs):
    dest = tmp_path / "dest"
    dest.mkdir()
    gate = DiskGate(str(dest), 10.0)  # not a mount point at start: none is expected
    assert gate.check() and gate.generation == 0
    tmpfs("dest")
    assert gate.check() and gate.generation == 1
    subprocess.run(["umount", str(dest)], check=True)
    assert gate.check() and gate.generation == 2  # back on the first filesystem


@pytest.mark.needs_root
@root_only
def test_a_large_file_fits_only_if_copying_it_keeps_the_minimum_free(small):
    size, total = pages(small)
    gate = DiskGate(str(small), 50.0)
    assert gate.fits(10**12), "before any reading nothing is refused"
    gate.check()
    half = total // 2
    assert gate.fits(half * size)
    assert not gate.fits((half + 1) * size)
    use(small, half)
    gate.check()  # fits() judges by the last reading: the engine checks first
    assert gate.fits(0)
    assert not gate.fits(size)


def test_a_destination_that_cannot_be_read_holds_intake_until_it_is_back(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    gate = DiskGate(str(dest), 0.0)
    assert gate.check()
    shutil.rmtree(dest)
    assert not gate.check()
    assert gate.error == f"cannot read free space of {dest}: No such file or directory"
    dest.mkdir()
    assert gate.check() and gate.error is None
    assert gate.generation > 0  # descriptors of the removed folder must not be used


def test_a_reader_holding_a_view_keeps_one_consistent_reading_while_the_gate_moves_on(tmp_path):
    # The snapshot shows free space and the pause reason side by side: both from one check.
    dest = tmp_path / "dest"
    dest.mkdir()
    gate = DiskGate(str(dest), 0.0)
    gate.check()
    shown = gate.view
    dest.rmdir()
    gate.check()  # in another thread, say
    assert not shown.closed and shown.error is None and shown.last is not None
    now = gate.view
    assert now.closed and now.error is not None and now.last == shown.last
    assert (gate.closed, gate.error, gate.last, gate.generation) == (
        now.closed,
        now.error,
        now.last,
        now.generation,
    )


@pytest.mark.needs_root
@root_only
def test_copies_in_flight_and_since_the_last_reading_count_against_the_minimum(small):
    size, total = pages(small)
    gate = DiskGate(str(small), 50.0)
    gate.check()
    quarter = (total // 4) * size
    assert gate.reserve(quarter) and gate.reserve(quarter)  # half the disk held by two copies
    assert not gate.reserve(size)  # a third would cross the minimum, though nothing is written yet
    gate.release(quarter, kept=False)  # one copy was given up: its room is free again
    assert gate.reserve(size)
    gate.release(size, kept=False)
    gate.release(quarter, kept=True)  # the other arrived: its bytes count until a reading shows them
    (small / "arrived").write_bytes(b"\0" * quarter)
    assert gate.fits(quarter - size) and not gate.fits(quarter + size)
    gate.check()  # the fresh reading shows the file itself, and counts it once
    assert gate.fits(quarter - size) and not gate.fits(quarter + size)
    free_inodes = os.statvfs(small).f_favail  # 200 less the root and the arrived file
    assert gate.reserve(0, inodes=free_inodes - 101) and gate.fits(0)  # exactly at the minimum after one more
    gate.made_folder()  # a folder made counts as an inode until the next reading
    assert not gate.fits(0)
