"""Producers as they really behave, and the kernel limits of file events.

Writers that hold a file open, close and reopen it, write ``.part`` then rename, link or rename
files in (no close-after-write event); a burst that overflows the inotify queue; more folders
than the inotify watch limit. Every file is delivered exactly once and complete; event trouble
shows as a warning, and the rescan makes up for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reorg_tui.engine import events as ev
from tests.conftest import OLD, files_under, make_settings, running, wait_for, write

SYSCTL = Path("/proc/sys/fs/inotify")


@pytest.fixture
def inotify_limit() -> Iterator:
    """Set an inotify limit for this test (it applies to instances made afterwards), and put
    it back afterwards; skip where /proc/sys is read-only."""
    saved: dict[str, str] = {}

    def set_limit(name: str, value: int) -> None:
        path = SYSCTL / name
        saved.setdefault(name, path.read_text())
        try:
            path.write_text(str(value))
        except OSError as exc:
            pytest.skip(f"cannot set {path}: {exc.strerror}")

    yield set_limit
    for name, value in saved.items():
        (SYSCTL / name).write_text(value)


def _delivered_once(settings, names: dict[str, bytes]) -> None:
    arrived = files_under(settings.dest)
    assert len(arrived) == len(names)
    for name, data in names.items():
        path = settings.dest / name[:4] / name[5:7] / name[8:10] / name
        assert path.read_bytes() == data, name


def test_writers_that_pause_reopen_rename_or_link_are_each_delivered_once_complete(tmp_path):
    settings = make_settings(tmp_path, settle=0.6, poll_interval=30)  # events only, after the first scan
    elsewhere = tmp_path / "staging"
    elsewhere.mkdir()
    expected: dict[str, bytes] = {}
    with running(settings) as (engine, rec):
        src = settings.source

        def reopener() -> None:  # closes, then comes back to append twice
            path = src / "2024-09-01_reopened.log"
            for part in (b"one\n", b"two\n", b"three\n"):
                with open(path, "ab") as f:
                    f.write(part)
                time.sleep(0.2)

        def slow() -> None:  # holds the file open, writing in pauses shorter than the settle time
            with open(src / "2024-09-02_slow.bin", "wb") as f:
                for _ in range(6):
                    f.write(b"x" * 1000)
                    f.flush()
                    time.sleep(0.15)

        writers = [threading.Thread(target=reopener), threading.Thread(target=slow)]
        for w in writers:
            w.start()
        # .part then rename: the final name appears complete, with a move event only
        write(src / ".2024-09-03_done.csv.part", b"a,b\n1,2\n")
        os.rename(src / ".2024-09-03_done.csv.part", src / "2024-09-03_done.csv")
        # renamed in from elsewhere on the same filesystem, and hard-linked in: no write at all
        write(elsewhere / "r", b"renamed in", OLD)
        os.rename(elsewhere / "r", src / "2024-09-04_renamed.txt")
        write(elsewhere / "l", b"linked in", OLD)
        os.link(elsewhere / "l", src / "2024-09-05_linked.txt")
        for w in writers:
            w.join()
        expected = {
            "2024-09-01_reopened.log": b"one\ntwo\nthree\n",
            "2024-09-02_slow.bin": b"x" * 6000,
            "2024-09-03_done.csv": b"a,b\n1,2\n",
            "2024-09-04_renamed.txt": b"renamed in",
            "2024-09-05_linked.txt": b"linked in",
        }
        wait_for(lambda: len(files_under(settings.dest)) == 5, timeout=15, what="every producer's file")
        time.sleep(1.0)  # nothing more arrives (no second copy of a reopened file)
    _delivered_once(settings, expected)
    assert len(rec.of(ev.Moved)) == 5 and files_under(settings.source) == {}


def test_a_burst_that_overflows_the_inotify_queue_is_warned_and_delivered(tmp_path, inotify_limit):
    inotify_limit("max_queued_events", 4)
    settings = make_settings(tmp_path, settle=0, poll_interval=300)  # no periodic rescan to lean on
    names = {f"2024-10-{1 + i % 28:02d}_burst{i:04d}.txt": f"{i}".encode() for i in range(3000)}
    feeder = (  # another process, so that it does not wait for the engine's threads
        "import os, sys\n"
        "for i in range(3000):\n"
        "    name = f'2024-10-{1 + i % 28:02d}_burst{i:04d}.txt'\n"
        "    with open(os.path.join(sys.argv[1], name), 'w') as f: f.write(str(i))\n"
    )
    with running(settings) as (engine, rec):
        wait_for(lambda: engine.snapshot().watcher not in ("off", ""), what="the watcher")
        time.sleep(0.3)  # the start-up scan is over: from here only events (and what they trigger)
        subprocess.run([sys.executable, "-c", feeder, str(settings.source)], check=True)
        wait_for(lambda: len(files_under(settings.dest)) == len(names), timeout=30, what="the burst")
        warnings = [w.message for w in rec.of(ev.Warning)]
        assert any("queue overflow" in m for m in warnings), warnings
    _delivered_once(settings, names)


def test_more_folders_than_the_watch_limit_fall_back_to_rescans_with_a_warning(tmp_path, inotify_limit):
    settings = make_settings(tmp_path, recursive=True, poll_interval=0.5)
    names = {}
    for i in range(30):
        name = f"2024-11-{1 + i % 28:02d}_deep{i}.txt"
        (settings.source / f"folder{i}").mkdir()
        names[name] = f"deep {i}".encode()
    inotify_limit("max_user_watches", 1)  # fewer than the folders (and than what is in use)
    with running(settings) as (engine, rec):
        for i, (name, data) in enumerate(names.items()):
            write(settings.source / f"folder{i}" / name, data, OLD)
        wait_for(lambda: len(files_under(settings.dest)) == len(names), timeout=20, what="every file")
        assert "partial" in engine.snapshot().watcher
        warnings = [w.message for w in rec.of(ev.Warning)]
        assert any("watch limit" in m for m in warnings), warnings
    _delivered_once(settings, names)


def test_a_file_written_to_during_its_copy_settles_again_and_arrives_whole(tmp_path, tmpfs):
    settings = make_settings(tmp_path, dest=tmpfs("dest", size="1g"), verify=True, settle=0.3)
    growing = settings.source / "2024-12-01_growing.bin"
    body = os.urandom(1 << 20) * 256  # 256 MiB: its verified copy takes a while
    write(growing, body, OLD)
    staging = settings.dest / ".reorg-tmp"
    with running(settings) as (engine, rec):
        wait_for(lambda: staging.exists() and any(staging.iterdir()), timeout=20, what="the copy to start")
        with open(growing, "ab") as f:  # the writer was not done after all
            f.write(b"the end")
        wait_for(lambda: not growing.exists(), timeout=30, what="the move after it settled again")
        assert any("changed during its copy" in w.message for w in rec.of(ev.Warning))
        assert rec.of(ev.Retried) == [] and engine.quarantine_list() == []
    arrived = settings.dest / "2024/12/01/2024-12-01_growing.bin"
    assert arrived.read_bytes() == body + b"the end"
    assert len(rec.of(ev.Moved)) == 1 and os.listdir(staging) == []
