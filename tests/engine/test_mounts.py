"""Filesystem faults root cannot wave away: unmounts, read-only mounts, no inodes left.

Each is made for real with mount(8) on tmpfs filesystems and bind mounts, and skipped with the
reason when this machine does not allow mounting.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reorg_tui.engine import events as ev
from tests.conftest import OLD, files_under, make_settings, running, wait_for, write

# A file that will be tried again: a retry, or a wait for room (ENOSPC, an unmounted destination).
TRIED_AGAIN = (ev.Retried, ev.Waiting)


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here: {result.stderr.strip()}")


def _umount(point: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["umount", *flags, str(point)], capture_output=True, text=True)


@pytest.fixture
def mounts():
    """Mount points to unmount (lazily, all layers) after the test."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        while _umount(point, "-l").returncode == 0:
            pass


def _read_only_bind(folder: Path, mounts: list[Path]) -> None:
    _mount("--bind", str(folder), str(folder))
    mounts.append(folder)
    _mount("-o", "remount,ro,bind", str(folder))


def test_a_destination_unmounted_while_idle_holds_intake_and_nothing_lands_underneath(
    tmp_path, tmpfs, mounts
):
    dest = tmpfs("dest")
    mounts.append(dest)
    settings = make_settings(tmp_path, dest=dest)
    write(settings.source / "2024-05-01_before.txt", b"before", OLD)
    with running(settings) as (engine, rec):
        wait_for((dest / "2024/05/01/2024-05-01_before.txt").exists, what="the first move")
        # Idle, the engine lets go of its folders: a plain (not lazy) unmount goes through.
        deadline = time.monotonic() + 5
        while _umount(dest).returncode != 0:
            assert time.monotonic() < deadline, "the destination stayed busy while idle"
            time.sleep(0.1)
        write(settings.source / "2024-05-02_during.txt", b"during", OLD)
        wait_for(lambda: engine.snapshot().state == "paused-disk", what="the pause")
        time.sleep(settings.poll_interval + 0.5)
        assert "is not mounted" in engine.snapshot().pause_reason
        assert os.listdir(dest) == []  # nothing written into the bare mount point
        assert (settings.source / "2024-05-02_during.txt").read_bytes() == b"during"
        _mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(dest))  # back (a new filesystem)
        wait_for((dest / "2024/05/02/2024-05-02_during.txt").exists, what="the move after remount")
        assert (dest / "2024/05/02/2024-05-02_during.txt").read_bytes() == b"during"
        assert [e.reason for e in rec.of(ev.Resumed)] == ["disk"]
    assert files_under(settings.source) == {}


def test_a_destination_unmounted_during_a_copy_keeps_the_source(tmp_path, tmpfs, mounts):
    dest = tmpfs("dest", size="1g")
    mounts.append(dest)
    settings = make_settings(tmp_path, dest=dest, verify=True)  # hashing slows the copy down
    big = settings.source / "2024-05-03_big.bin"
    with open(big, "wb") as f:
        for _ in range(384):
            f.write(os.urandom(1 << 20))
    os.utime(big, (OLD, OLD))
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    staging = dest / ".reorg-tmp"
    with running(settings) as (engine, rec):
        wait_for(lambda: staging.exists() and any(staging.iterdir()), timeout=20, what="the copy to start")
        assert _umount(dest, "-l").returncode == 0  # lazily: the copy goes on into a detached fs
        wait_for(lambda: rec.of(TRIED_AGAIN), timeout=30, what="the copy to be given up")
        assert "unmounted during the copy" in rec.of(TRIED_AGAIN)[0].error
        assert hashlib.sha256(big.read_bytes()).hexdigest() == expected  # the source stayed whole
        assert os.listdir(dest) == []  # and nothing went into the bare mount point
        _mount("-t", "tmpfs", "-o", "size=1g", "tmpfs", str(dest))
        arrived = dest / "2024/05/03/2024-05-03_big.bin"
        wait_for(lambda: not big.exists(), timeout=30, what="the move after remount")
        assert hashlib.sha256(arrived.read_bytes()).hexdigest() == expected
        assert [e.how for e in rec.of(ev.Moved)] == ["copied"]


def test_a_read_only_destination_retries_then_delivers_once(tmp_path, mounts):
    settings = make_settings(tmp_path, retry_base_delay=0.2, retry_max_delay=0.5, max_retries=50)
    _read_only_bind(settings.dest, mounts)  # EROFS, which root does not bypass
    write(settings.source / "2024-05-04_ro.txt", b"ro", OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: len(rec.of(ev.Retried)) >= 2, what="retries against the read-only mount")
        assert all("EROFS" in e.error for e in rec.of(ev.Retried))
        delays = [e.delay for e in rec.of(ev.Retried)]
        assert delays[1] >= delays[0] * 0.5  # backing off, not spinning
        assert (settings.source / "2024-05-04_ro.txt").read_bytes() == b"ro"
        _mount("-o", "remount,rw,bind", str(settings.dest))
        wait_for(lambda: rec.of(ev.Moved), timeout=15, what="the move once writable")
    assert files_under(settings.dest) == {
        "2024/05/04/2024-05-04_ro.txt": files_under(settings.dest)["2024/05/04/2024-05-04_ro.txt"]
    }
    assert len(rec.of(ev.Moved)) == 1 and files_under(settings.source) == {}


def test_a_read_only_source_is_copied_then_taken_back_so_the_file_is_never_in_two_places(tmp_path, mounts):
    # A bind mount is a mount of its own: a rename out of it fails with EXDEV and the file is
    # copied; its source cannot then be removed (EROFS), so the published copy is taken back.
    settings = make_settings(tmp_path, retry_base_delay=0.2, retry_max_delay=0.5, max_retries=50)
    write(settings.source / "2024-05-05_stuck.txt", b"stuck", OLD)
    _read_only_bind(settings.source, mounts)
    with running(settings) as (engine, rec):
        wait_for(lambda: len(rec.of(ev.Retried)) >= 2, what="retries against the read-only source")
        assert "EROFS" in rec.of(ev.Retried)[0].error
        assert files_under(settings.dest) == {}  # every published copy was taken back
        assert (settings.source / "2024-05-05_stuck.txt").read_bytes() == b"stuck"
        _mount("-o", "remount,rw,bind", str(settings.source))
        wait_for(lambda: rec.of(ev.Moved), timeout=15, what="the move once writable")
    assert set(files_under(settings.dest)) == {"2024/05/05/2024-05-05_stuck.txt"}
    assert files_under(settings.source) == {}


def test_no_inodes_left_holds_intake_publishes_nothing_partial_and_resumes(tmp_path, tmpfs):
    dest = tmpfs("dest", size="64m", inodes=64)
    settings = make_settings(tmp_path, dest=dest)
    ballast = dest / "ballast"
    ballast.mkdir()
    n = 0
    while True:  # use up every inode
        try:
            (ballast / str(n)).touch()
        except OSError:
            break
        n += 1
    for d in range(1, 6):
        write(settings.source / f"2024-06-{d:02d}_f.txt", f"file {d}".encode(), OLD)
    with running(settings) as (engine, rec):
        wait_for(lambda: engine.snapshot().state == "paused-disk", what="the inode pause")
        assert "free inodes" in engine.snapshot().pause_reason
        time.sleep(settings.poll_interval + 0.5)
        assert len(files_under(settings.source)) == 5
        assert not (dest / "2024").exists()
        for child in ballast.iterdir():
            child.unlink()
        wait_for(lambda: not files_under(settings.source), what="every file after inodes are freed")
    assert {p: d for p, d in files_under(dest).items() if not p.startswith("ballast")}.keys() == {
        f"2024/06/{d:02d}/2024-06-{d:02d}_f.txt" for d in range(1, 6)
    }
    assert len(rec.of(ev.Moved)) == 5


def test_a_failing_fsync_publishes_nothing_and_every_file_arrives_once_it_recovers(tmp_path, tmpfs, mounts):
    # A real failing disk: ext4 on a loop device whose backing file lives on a 12 MiB tmpfs.
    # ext4 believes it has 128 MiB; once the backing store is full, writeback fails and so
    # does fsync. Growing the tmpfs is the disk coming back.
    if not (shutil.which("mkfs.ext4") and shutil.which("losetup")):
        pytest.skip("needs mkfs.ext4 and loop devices")
    backing = tmpfs("backing", size="12m")
    image = backing / "disk.img"
    with open(image, "wb") as f:
        f.truncate(128 << 20)
    # No journal: a failed journal write would turn the filesystem read-only for good (that is
    # the read-only test's fault); here the disk fails writes, then comes back.
    mkfs = ["mkfs.ext4", "-q", "-O", "^has_journal", "-E", "lazy_itable_init=0", str(image)]
    subprocess.run(mkfs, check=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    _mount("-o", "loop,errors=continue", str(image), str(dest))
    mounts.append(dest)
    settings = make_settings(tmp_path, dest=dest, max_retries=100, retry_base_delay=0.1, retry_max_delay=0.5)
    made = {}
    for d in range(1, 7):
        data = os.urandom(4 << 20)
        write(settings.source / f"2024-08-{d:02d}_big.bin", data, OLD)
        made[f"2024/08/{d:02d}/2024-08-{d:02d}_big.bin"] = hashlib.sha256(data).hexdigest()
    with running(settings) as (engine, rec):
        wait_for(lambda: len(rec.of(TRIED_AGAIN)) >= 3, timeout=30, what="fsync failures")
        errors = {e.error for e in rec.of(TRIED_AGAIN)}
        assert all("ENOSPC" in e or "EIO" in e for e in errors), errors
        for rel, sha in files_under(dest).items():  # whatever has a final name is complete
            if rel.startswith("2024/"):
                assert made[rel] == sha, rel
        waiting = files_under(settings.source)
        assert waiting and all(
            made[f"2024/08/{n[8:10]}/{n}"] == sha for n, sha in waiting.items()
        )  # the rest still whole in the source
        _mount("-o", "remount,size=256m", str(backing))
        wait_for(lambda: not files_under(settings.source), timeout=60, what="every file after recovery")
    assert {rel: sha for rel, sha in files_under(dest).items() if rel.startswith("2024/")} == made
    assert not [rel for rel in files_under(dest) if ".reorg-tmp" in rel]
    assert engine.quarantine_list() == []
