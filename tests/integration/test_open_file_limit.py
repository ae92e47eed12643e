"""A low open-file limit, set for real on the daemon's process (soft and hard, so that it cannot
raise it): every descriptor cache is sized from the limit, and running out of descriptors
(EMFILE) is a wait, never a failed attempt, a quarantine or a file left behind.

``--max-retries 1`` (0 where EMFILE is provoked): a failure that counted as an attempt would
quarantine (or, when even the quarantine cannot open a file, leave in the source) most files at
once; none may be.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import OLD, cli, files_under
from tests.integration.test_headless import _assert_each_file_exactly_once, _limit_open_files


def _date_folders(src: Path, days: int, each: int) -> dict[str, bytes]:
    made = {}
    for i in range(days):
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        for k in range(each):
            name = f"{day.isoformat()}_f{k}.bin"
            made[name] = os.urandom(100 + k)
            (src / name).write_bytes(made[name])
            os.utime(src / name, (OLD, OLD))
    return made


def _source_subfolders(src: Path, folders: int, each: int) -> dict[str, bytes]:
    made = {}
    for i in range(folders):
        sub = src / f"sub{i:03d}"
        sub.mkdir()
        for k in range(each):
            day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 50)
            name = f"{day.isoformat()}_s{i:03d}_{k}.bin"
            made[name] = os.urandom(100 + k)
            (sub / name).write_bytes(made[name])
            os.utime(sub / name, (OLD, OLD))
    return made


def _folders(tmp_path: Path, dest_on: Path | None = None) -> tuple[Path, Path]:
    """A source, and a destination below ``dest_on`` (another filesystem) or beside it."""
    src, dest = tmp_path / "src", (dest_on or tmp_path) / "dst"
    src.mkdir()
    dest.mkdir()
    return src, dest


def _once(tmp_path: Path, src: Path, dest: Path, limit: int, *extra: str, retries: int = 1):
    q = tmp_path / "q"
    q.mkdir(exist_ok=True)  # a named quarantine must exist
    return cli(
        "--once",
        "-s",
        str(src),
        "-d",
        str(dest),
        "--quarantine",
        str(q),
        "--state-dir",
        str(tmp_path / "state"),
        "--settle",
        "0",
        "--max-retries",
        str(retries),
        "--retry-base-delay",
        "0.05",
        "--retry-max-delay",
        "0.2",
        *extra,
        preexec_fn=_limit_open_files(limit, limit),
        timeout=120,
    )


def _assert_all_delivered(done, made: dict[str, bytes], src: Path, dest: Path, q: Path) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert "left in the source" not in done.stderr
    assert "quarantined" not in done.stderr.replace("quarantine 0", "")
    _assert_each_file_exactly_once(made, src, dest)
    assert not files_under(src) and not (q.exists() and any(q.iterdir()))


@pytest.mark.parametrize("across", [False, True], ids=["renames", "copies"])
def test_200_date_folders_under_an_open_file_limit_of_64_all_arrive(tmp_path, tmpfs, across):
    src, dest = _folders(tmp_path, tmpfs("other") if across else None)
    made = _date_folders(src, 200, 3)
    done = _once(tmp_path, src, dest, 64)
    _assert_all_delivered(done, made, src, dest, tmp_path / "q")


def test_400_source_subfolders_under_recursive_and_a_limit_of_128_all_arrive(tmp_path):
    src, dest = _folders(tmp_path)
    made = _source_subfolders(src, 400, 2)
    done = _once(tmp_path, src, dest, 128, "--recursive")
    _assert_all_delivered(done, made, src, dest, tmp_path / "q")


def test_more_copies_at_once_than_the_limit_leaves_room_for_wait_for_descriptors_and_all_arrive(
    tmp_path, tmpfs
):
    # 16 workers copying at once need more descriptors than a limit of 32 leaves after the
    # daemon's own: EMFILE happens for real here (the log says so), and each is a wait. With no
    # retries at all, one EMFILE counted as a failed attempt would quarantine its file.
    src, dest = _folders(tmp_path, tmpfs("other"))
    made = _date_folders(src, 200, 3)
    done = _once(tmp_path, src, dest, 32, "--workers", "16", retries=0)
    assert "EMFILE" in done.stderr, "no descriptor ran out: this test proves nothing"
    _assert_all_delivered(done, made, src, dest, tmp_path / "q")


def test_a_limit_too_low_to_move_anything_is_refused_in_one_line_with_exit_2(tmp_path):
    # Under 24 descriptors a daemon copying files spins on EMFILE without moving one (measured
    # at 16): it says so at start instead, and touches nothing.
    src, dest = _folders(tmp_path)
    made = _date_folders(src, 3, 1)
    done = _once(tmp_path, src, dest, 16)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "open-file limit is 16" in line and "ulimit -n" in line and "Traceback" not in line
    assert sorted(p.name for p in src.iterdir()) == sorted(made)


SCAN_WITH_NO_DESCRIPTOR_FREE = """
import os, resource, sys, threading
from reorg_tui.engine.naming import Naming
from reorg_tui.engine.watch import ScanCount, scan
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass  # EMFILE: every descriptor is taken
top = held.pop()  # one free: the scan's own root, and nothing for a subfolder
os.close(top)
def free_later():  # as copies in flight close theirs
    for fd in held:
        os.close(fd)
threading.Timer(0.3, free_later).start()
naming = Naming(r"(?P<year>\\d{4})-(?P<month>\\d{2})-(?P<day>\\d{2})_", "{year}/{month}/{day}", ())
found = sorted(rel for rel, _ in scan(sys.argv[1], naming, True, ScanCount()))
print("\\n".join(found))
"""


def test_a_scan_that_finds_no_descriptor_free_waits_for_one_and_skips_no_folder(tmp_path):
    # A real process with every descriptor taken but one (its limit reached for real), freed a
    # moment later: the scan lists every subfolder, where it used to skip them ("cannot list"),
    # which under --once left their files behind for good.
    src = tmp_path / "src"
    made = []
    for i in range(5):
        (src / f"sub{i}").mkdir(parents=True)
        (src / f"sub{i}" / f"2024-01-0{i + 1}_f.txt").write_text("x")
        made.append(f"sub{i}/2024-01-0{i + 1}_f.txt")
    run = subprocess.run(
        [sys.executable, "-c", SCAN_WITH_NO_DESCRIPTOR_FREE, str(src)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == sorted(made), run.stderr
    assert "cannot list" not in run.stderr
