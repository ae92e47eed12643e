"""Attacks: the daemon may run as root over a source that strangers write into.

Nothing outside the configured roots is read, written or moved; links, FIFOs, sockets and
devices are never opened for reading; setuid and setgid bits never reach the destination.
Races are made deterministic by calling the mover with the lstat the scan took, after the
name has been swapped: the same state a real race leaves behind.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from reorg_tui.engine import events as ev
from reorg_tui.engine.dirs import NotAFolder, Tree
from reorg_tui.engine.errors import Vanished
from reorg_tui.engine.move import Mover
from reorg_tui.engine.rename_lane import RenameLane
from tests.conftest import OLD, files_under, make_settings, run_once, write


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every root, with a file an attacker would like to reach."""
    folder = tmp_path / "outside"
    write(folder / "2024-01-01_secret.txt", b"secret")
    return folder


def test_a_date_folder_planted_as_a_symlink_is_refused_and_nothing_lands_outside(tmp_path, outside):
    settings = make_settings(tmp_path)
    (settings.dest / "2024/01").mkdir(parents=True)
    os.symlink(outside, settings.dest / "2024/01/01")  # the day folder points outside
    os.symlink(outside, settings.dest / "2025")  # so does a year folder
    write(settings.source / "2024-01-01_a.txt", b"a", OLD)
    write(settings.source / "2025-03-04_b.txt", b"b", OLD)
    engine, rec = run_once(settings)
    assert sorted(os.listdir(outside)) == ["2024-01-01_secret.txt"]
    assert {r.name: r.reason for r in engine.quarantine_list()}.keys() == {
        "2024-01-01_a.txt",
        "2025-03-04_b.txt",
    }
    assert all("symlink" in r.reason for r in engine.quarantine_list())
    assert os.path.islink(settings.dest / "2025")  # left as it was, not replaced


def test_a_folder_opened_below_a_cached_parent_is_refused_as_a_symlink_all_the_same(tmp_path, outside):
    tree = Tree(str(tmp_path / "dest"))
    with tree.folder("2024/01", create=True):  # "2024" and "2024/01" are now held open
        pass
    os.symlink(outside, tmp_path / "dest/2024/01/02")
    with pytest.raises(NotAFolder, match="symlink"):
        tree.lend("2024/01/02", create=True)
    with tree.folder("2024/01/03", create=True) as fd:  # a missing one is made below the parent
        assert os.path.samestat(os.fstat(fd), os.lstat(tmp_path / "dest/2024/01/03"))
    assert sorted(os.listdir(outside)) == ["2024-01-01_secret.txt"]
    for bad in ("/2024", "2024//01", "2024/../x"):
        with pytest.raises(NotAFolder):
            tree.lend(bad, create=True)


def test_a_source_subfolder_swapped_for_a_symlink_is_neither_walked_nor_moved_from(tmp_path, outside):
    settings = make_settings(tmp_path, recursive=True)
    sub = write(settings.source / "sub/2024-01-01_secret.txt", b"mine", OLD).parent
    source = Tree(str(settings.source), create_root=False)
    st = os.lstat(sub / "2024-01-01_secret.txt")  # as the scan saw it
    sub.rename(settings.source / "sub.old")
    os.symlink(outside, sub)  # the race: swapped after the scan, before the move
    mover = Mover(Tree(str(settings.dest)))
    with pytest.raises(Vanished):
        mover.move(source, "sub/2024-01-01_secret.txt", "2024/01/01", "2024-01-01_secret.txt", st=st)
    assert (outside / "2024-01-01_secret.txt").read_bytes() == b"secret"
    assert files_under(settings.dest) == {}
    run_once(settings)  # and a full run does not walk into the link either
    assert (outside / "2024-01-01_secret.txt").read_bytes() == b"secret"
    assert set(files_under(settings.dest)) == {"2024/01/01/2024-01-01_secret.txt"}  # the real one
    assert (settings.dest / "2024/01/01/2024-01-01_secret.txt").read_bytes() == b"mine"


@pytest.mark.parametrize("how", ["rename", "copy", "lane"])
def test_a_file_swapped_for_a_symlink_before_its_move_is_left_and_nothing_behind_it_read(
    tmp_path, outside, tmpfs, how
):
    across = how == "copy"
    dest = tmpfs("dest") if across else tmp_path / "dest"
    source = tmp_path / "source"
    victim = write(source / "2024-01-01_x.txt", b"x", OLD)
    os.chmod(source, 0o777)  # a drop folder strangers write into: only they can swap a name
    st = os.lstat(victim)
    victim.unlink()
    os.symlink(outside / "2024-01-01_secret.txt", victim)
    mover = Mover(Tree(str(dest)))
    with pytest.raises(Vanished):
        if how == "lane":  # a batch's fast lane: the folder exists, the name is free
            (dest / "2024/01/01").mkdir(parents=True)
            with RenameLane(mover, Tree(str(source))) as lane:
                lane.move("2024-01-01_x.txt", "2024/01/01", "2024-01-01_x.txt", st)
        else:
            mover.move(Tree(str(source)), "2024-01-01_x.txt", "2024/01/01", "2024-01-01_x.txt", st=st)
    assert os.path.islink(victim)  # put back where it was (a rename), or never touched (a copy)
    assert not (dest / "2024/01/01/2024-01-01_x.txt").exists()
    assert not os.path.lexists(dest / "2024/01/01/2024-01-01_x.txt")
    assert (outside / "2024-01-01_secret.txt").read_bytes() == b"secret"
    assert not any(n.endswith(".part") for n in os.listdir(dest / ".reorg-tmp")) if across else True


def test_in_a_folder_only_its_owner_writes_the_lane_moves_what_the_owner_put_there_and_follows_nothing(
    tmp_path, outside
):
    """Where no one but this process's user can change a name (a folder of its own, not group- or
    world-writable), the lane does not look at what it renamed: nobody else can have swapped it.
    What the owner itself swapped in moves as it is: a symlink stays a symlink, never followed."""
    source, dest = tmp_path / "source", tmp_path / "dest"
    victim = write(source / "2024-01-01_x.txt", b"x", OLD)
    os.chmod(source, 0o755)
    st = os.lstat(victim)
    victim.unlink()
    os.symlink(outside / "2024-01-01_secret.txt", victim)
    (dest / "2024/01/01").mkdir(parents=True)
    with RenameLane(Mover(Tree(str(dest))), Tree(str(source))) as lane:
        assert lane.move("2024-01-01_x.txt", "2024/01/01", "2024-01-01_x.txt", st)
    arrived = dest / "2024/01/01/2024-01-01_x.txt"
    assert arrived.is_symlink() and not os.path.lexists(victim)
    assert (outside / "2024-01-01_secret.txt").read_bytes() == b"secret"
    assert os.listdir(outside) == ["2024-01-01_secret.txt"]


def test_a_file_another_user_owns_is_looked_at_after_its_rename_even_in_a_folder_of_our_own(tmp_path):
    """Its owner may chmod it between the scan and the rename: the setuid bit it set is dropped."""
    source, dest = tmp_path / "source", tmp_path / "dest"
    path = write(source / "2024-01-01_tool", b"#!/bin/sh\n", OLD)
    os.chmod(source, 0o755)
    os.chown(path, 4321, 4321)
    st = os.lstat(path)
    os.chmod(path, 0o755 | stat.S_ISUID)  # after the scan's look (as its owner could)
    (dest / "2024/01/01").mkdir(parents=True)
    with RenameLane(Mover(Tree(str(dest))), Tree(str(source))) as lane:
        assert lane.move("2024-01-01_tool", "2024/01/01", "2024-01-01_tool", st)
    assert stat.S_IMODE(os.lstat(dest / "2024/01/01/2024-01-01_tool").st_mode) == 0o755


def test_fifos_sockets_and_devices_are_never_opened_and_never_block(tmp_path, tmpfs):
    settings = make_settings(tmp_path, dest=tmpfs("dest"))  # across filesystems: a copy would open
    os.mkfifo(settings.source / "2024-01-01_fifo")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(settings.source / "2024-01-01_sock"))
    os.mknod(settings.source / "2024-01-01_null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    write(settings.source / "2024-01-01_real.txt", b"real", OLD)
    engine, _ = run_once(settings)  # opening the FIFO for reading would hang here
    listener.close()
    assert set(files_under(settings.dest)) == {"2024/01/01/2024-01-01_real.txt"}
    for name in ("2024-01-01_fifo", "2024-01-01_sock", "2024-01-01_null"):
        assert os.path.lexists(settings.source / name), name
    assert engine.snapshot().totals.ignored == 3
    assert engine.quarantine_list() == []


def test_a_fifo_swapped_in_before_a_copy_is_not_opened_for_reading(tmp_path, tmpfs):
    dest = tmpfs("dest")
    source = tmp_path / "source"
    victim = write(source / "2024-01-01_x.txt", b"x", OLD)
    st = os.lstat(victim)
    victim.unlink()
    os.mkfifo(victim)  # a blocking open (or a read) of this would hang the worker
    with pytest.raises(Vanished):
        Mover(Tree(str(dest))).move(Tree(str(source)), victim.name, "2024/01/01", victim.name, st=st)
    assert stat.S_ISFIFO(os.lstat(victim).st_mode)


def test_hard_linked_sources_move_by_rename_and_are_never_copied(tmp_path, tmpfs):
    keep = write(tmp_path / "elsewhere/keep.txt", b"linked", OLD)
    same = make_settings(tmp_path / "same")
    os.link(keep, same.source / "2024-01-01_linked.txt")
    run_once(same)  # one filesystem: the name moves, no byte is read
    moved = same.dest / "2024/01/01/2024-01-01_linked.txt"
    assert os.path.samefile(moved, keep) and keep.read_bytes() == b"linked"

    across = make_settings(tmp_path / "across", dest=tmpfs("dest"), max_retries=1)
    os.link(keep, across.source / "2024-01-01_linked.txt")
    engine, rec = run_once(across)  # across: a copy would leave the other name with the bytes
    assert files_under(across.dest) == {}
    [failure] = [e for e in rec.of(ev.Retried)]
    assert "hard links" in failure.error
    assert keep.read_bytes() == b"linked"


def test_setuid_and_setgid_bits_never_reach_the_destination(tmp_path, tmpfs):
    for settings in (make_settings(tmp_path / "same"), make_settings(tmp_path / "x", dest=tmpfs("dest"))):
        # The folder exists, so a rename would take the batch's fast lane: it declines a file with
        # these bits, and the full path renames it and clears them.
        (settings.dest / "2024/01/01").mkdir(parents=True)
        for name in ("2024-01-01_suid", "2024-01-01_sgid"):
            path = write(settings.source / name, b"#!/bin/sh\n", OLD)
            os.chmod(path, 0o755 | (stat.S_ISUID if "suid" in name else stat.S_ISGID))
            os.utime(path, (OLD, OLD))
        run_once(settings)
        for name in ("2024-01-01_suid", "2024-01-01_sgid"):
            mode = os.lstat(settings.dest / "2024/01/01" / name).st_mode
            assert stat.S_IMODE(mode) == 0o755, (settings.dest, name, oct(mode))


HOSTILE = [
    "2024-02-02_[@click=app.quit]x[link=evil.example]y[bold red].txt",  # no "/" can be in a name
    "2024-02-02_esc\x1b]0;owned\x07\x1b[2J.txt",
    "2024-02-02_new\nline.txt",
    "2024-02-02_bidi\u202egnp.exe",
    os.fsdecode(b"2024-02-02_bad\xff\xfeutf8.txt"),  # not UTF-8: kept as its raw bytes
    "2024-02-02_" + "x" * (255 - len("2024-02-02_") - 4) + ".txt",  # 255 bytes exactly
    "2024-02-02_" + "é" * 120 + ".txt",  # 255 bytes of two-byte characters, less a little
]


@pytest.mark.parametrize("across", [False, True], ids=["rename", "copy"])
def test_hostile_names_arrive_with_their_exact_bytes_even_when_they_collide(tmp_path, tmpfs, across):
    settings = make_settings(tmp_path, dest=tmpfs("dest") if across else None)
    day = settings.dest / "2024/02/02"
    for i, name in enumerate(HOSTILE):
        write(day / name, b"already there")  # every one collides with a file at its destination
        write(settings.source / name, f"new {i}".encode(), OLD)
    engine, rec = run_once(settings)
    arrived = {os.fsencode(n) for n in os.listdir(day)}
    for i, name in enumerate(HOSTILE):
        raw = os.fsencode(name)
        assert raw in arrived and (day / name).read_bytes() == b"already there"
        [moved] = [e for e in rec.of(ev.Moved) if e.source.endswith(name)]
        new = os.fsencode(os.path.basename(moved.destination))
        assert new != raw and len(new) <= 255 and (day / os.fsdecode(new)).read_bytes() == f"new {i}".encode()
    assert os.listdir(settings.source) == [] and engine.quarantine_list() == []
