"""`reorg-tui --dry-run --plan FILE` and `reorg-tui apply FILE`, on real folders: the dry run
touches nothing, and apply carries out exactly the plan or refuses an entry with its reason."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reorg_tui.cli import main
from reorg_tui.engine import planfile
from reorg_tui.engine.lock import SourceLock
from tests.conftest import OLD, cli, write

ODD = os.fsdecode(b"2024-06-02_caf\xe9 \xff.txt")  # Latin-1 bytes: not UTF-8


class Dirs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.src, self.dst, self.plans = root / "src", root / "dst", root / "plans"
        self.state = root / "state"  # not made: nothing should make it but a run that holds the source
        for folder in (self.src, self.dst, self.plans):
            folder.mkdir()
        self.plan = self.plans / "plan.json"

    def flags(self) -> list[str]:
        return ["-s", str(self.src), "-d", str(self.dst), "--state-dir", str(self.state)]


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    return Dirs(tmp_path)


def _dry_run(d: Dirs, *extra: str) -> int:
    return main(["--dry-run", *d.flags(), "--plan", str(d.plan), *extra])


def _apply(d: Dirs, *extra: str) -> int:
    return main(["apply", str(d.plan), "--state-dir", str(d.state), *extra])


def _listing(*roots: Path) -> dict[str, tuple[int, ...] | None]:
    """Every entry below each root (the roots included) with its lstat, all but the atime."""
    out: dict[str, tuple[int, ...] | None] = {}
    for root in roots:
        if not os.path.lexists(root):
            out[str(root)] = None
            continue
        for folder, subfolders, names in os.walk(root):
            for path in [folder, *(os.path.join(folder, n) for n in subfolders + names)]:
                st = os.lstat(path)
                out[path] = (
                    st.st_mode,
                    st.st_dev,
                    st.st_ino,
                    st.st_nlink,
                    st.st_uid,
                    st.st_gid,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                )
    return out


def _past_a_clock_tick(ns: int) -> None:
    """Wait until the clock is past ``ns`` by more than a tick: file times come from a coarse
    clock (a tick is 1 to 10 ms), and a change within the tick that made a file leaves its times."""
    while time.time_ns() < ns + 20_000_000:
        time.sleep(0.005)


def _backlog(d: Dirs) -> dict[str, bytes]:
    made = {
        "2024-05-01_a.txt": b"alpha",
        "2024-05-01_b.txt": b"bravo",
        "sub/2023-12-31_c.txt": b"charlie",
        ODD: b"odd name",
    }
    for rel, data in made.items():
        write(d.src / rel, data, OLD)
    return made


def _entries(d: Dirs) -> dict[str, dict[str, Any]]:
    doc = json.loads(d.plan.read_bytes().decode("utf-8"))  # valid UTF-8, whatever the names
    return {e["rel"]: e for e in doc["entries"]}


def test_a_dry_run_with_a_plan_changes_nothing_on_disk_and_writes_every_file_with_its_identity(dirs):
    d = dirs
    _backlog(d)
    write(d.src / "2024-02-30_bad.txt", b"no such day", OLD)
    write(d.src / "notes.txt", b"ignored")
    write(d.dst / "2024/05/01/2024-05-01_b.txt", b"already there")
    roots = (d.src, d.dst, d.dst / "_quarantine", d.state)
    _past_a_clock_tick(max(os.lstat(p).st_ctime_ns for p in _listing(d.src, d.dst)))
    before = _listing(*roots)

    started = time.time()
    result = cli("--dry-run", *d.flags(), "--recursive", "--plan", str(d.plan))  # its own process
    assert result.returncode == 0, result.stderr
    assert _listing(*roots) == before  # not a file, not a folder, not a folder's mtime or ctime
    assert f"nothing was touched; the plan is in {d.plan}" in result.stdout
    assert stat.S_IMODE(os.lstat(d.plan).st_mode) == 0o600
    assert sorted(os.listdir(d.plans)) == ["plan.json"]  # no temporary file left beside it

    doc = json.loads(d.plan.read_bytes().decode("utf-8"))
    assert (doc["format"], doc["version"]) == ("reorg-tui-plan", 1)
    assert (doc["source"], doc["dest"]) == (str(d.src), str(d.dst))
    assert started - 1 <= doc["created"] <= time.time()
    entries = _entries(d)
    assert sorted(entries) == sorted(
        ["2024-05-01_a.txt", "2024-05-01_b.txt", "sub/2023-12-31_c.txt", ODD, "2024-02-30_bad.txt"]
    )
    for rel, e in entries.items():
        st = os.lstat(d.src / rel)
        assert e["source"] == f"{d.src}/{rel}"
        assert e["identity"] == {
            "st_dev": st.st_dev,
            "st_ino": st.st_ino,
            "st_size": st.st_size,
            "st_mtime_ns": st.st_mtime_ns,
            "st_ctime_ns": st.st_ctime_ns,
        }
    a = entries["2024-05-01_a.txt"]
    assert (a["quarantine"], a["folder"], a["name"], a["exists"]) == (
        False,
        "2024/05/01",
        "2024-05-01_a.txt",
        False,
    )
    assert a["target"] == f"{d.dst}/2024/05/01/2024-05-01_a.txt"
    assert entries["2024-05-01_b.txt"]["exists"] is True
    bad = entries["2024-02-30_bad.txt"]
    assert bad["quarantine"] is True and bad["problem"] == "2024-02-30 is not a real date"
    assert "folder" not in bad and "target" not in bad
    # The undecodable bytes come back exactly, through a string.
    assert os.fsencode(entries[ODD]["rel"]) == b"2024-06-02_caf\xe9 \xff.txt"
    assert b"caf\\udce9 \\udcff.txt" in d.plan.read_bytes()


def test_apply_moves_exactly_the_planned_files_to_exactly_the_planned_targets(dirs, capsys):
    d = dirs
    made = _backlog(d)
    # A layout that apply is not told: the plan alone says where each file goes.
    assert _dry_run(d, "--recursive", "--layout", "{year}/{month}") == 0
    planned = {rel: os.lstat(d.src / rel).st_ino for rel in made}
    write(d.src / "2024-05-01_late.txt", b"came after the plan", OLD)
    capsys.readouterr()

    before = _listing(d.src, d.dst, d.state)
    assert _apply(d, "--dry-run") == 0
    assert _listing(d.src, d.dst, d.state) == before  # a dry apply touches nothing either
    assert "dry run of" in capsys.readouterr().out

    assert _apply(d) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"applied {d.plan}: 4 moved, 0 refused"
    assert f"moved {d.src}/2024-05-01_a.txt -> {d.dst}/2024/05/2024-05-01_a.txt" in out
    targets = {
        "2024-05-01_a.txt": "2024/05/2024-05-01_a.txt",
        "2024-05-01_b.txt": "2024/05/2024-05-01_b.txt",
        "sub/2023-12-31_c.txt": "2023/12/2023-12-31_c.txt",
        ODD: "2024/06/" + ODD,
    }
    arrived = {str(p.relative_to(d.dst)): p for p in d.dst.rglob("*") if p.is_file() and not p.is_symlink()}
    assert sorted(arrived) == sorted(targets.values())
    for rel, target in targets.items():
        assert arrived[target].read_bytes() == made[rel]
        assert os.lstat(arrived[target]).st_ino == planned[rel]  # the very file, renamed
        assert not os.path.lexists(d.src / rel)
    assert sorted(os.listdir(d.src)) == ["2024-05-01_late.txt", "sub"]  # not in the plan: left
    # Journaled as the daemon's moves are: one done row per file, in one batch of this apply.
    db = sqlite3.connect(d.state / "ledger.sqlite3")
    rows = db.execute("SELECT kind, step, batch, target FROM transfers").fetchall()
    db.close()
    assert sorted(os.fsdecode(r[3]) for r in rows) == sorted(f"{d.dst}/{t}" for t in targets.values())
    assert {r[:2] for r in rows} == {("deliver", "done")} and len({r[2] for r in rows}) == 1
    assert rows[0][2].startswith("apply-")


def _rewrite_with_mtime_set_back(path: Path, data: bytes) -> None:
    before = os.lstat(path)
    _past_a_clock_tick(before.st_ctime_ns)
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.lstat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_apply_refuses_a_file_rewritten_in_place_with_its_mtime_set_back(dirs, capsys):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    write(d.src / "2024-05-01_b.txt", b"bravo", OLD)
    assert _dry_run(d) == 0
    _rewrite_with_mtime_set_back(d.src / "2024-05-01_a.txt", b"ALPHA")  # only its ctime tells
    capsys.readouterr()

    assert _apply(d) == 1
    out = capsys.readouterr().out
    assert f"refused {d.src}/2024-05-01_a.txt: changed since planning (st_ctime_ns differ)" in out
    assert out.splitlines()[-1] == f"applied {d.plan}: 1 moved, 1 refused (1 changed since planning)"
    assert (d.src / "2024-05-01_a.txt").read_bytes() == b"ALPHA"
    assert not (d.dst / "2024/05/01/2024-05-01_a.txt").exists()
    assert (d.dst / "2024/05/01/2024-05-01_b.txt").read_bytes() == b"bravo"  # the rest go on


def test_apply_refuses_a_file_replaced_by_another_of_the_same_name(dirs, capsys):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    assert _dry_run(d) == 0
    # The same name, size, bytes and mtime, as an editor's save-by-rename leaves it: another inode.
    write(d.src / ".new", b"alpha", OLD)
    os.replace(d.src / ".new", d.src / "2024-05-01_a.txt")
    capsys.readouterr()

    assert _apply(d) == 1
    assert "changed since planning (st_ino" in capsys.readouterr().out
    assert (d.src / "2024-05-01_a.txt").read_bytes() == b"alpha"
    assert list(d.dst.iterdir()) == []


def test_apply_refuses_an_entry_whose_file_is_gone(dirs, capsys):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    assert _dry_run(d) == 0
    (d.src / "2024-05-01_a.txt").unlink()
    os.symlink("/etc/passwd", d.src / "2024-05-01_a.txt")  # its name now holds a link: not followed
    assert _apply(d) == 1
    assert "no longer in the source" in capsys.readouterr().out
    assert list(d.dst.iterdir()) == []


def test_apply_skips_an_entry_whose_target_name_got_taken_and_touches_neither_file(dirs, capsys):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    write(d.src / "2024-05-01_b.txt", b"bravo", OLD)
    assert _dry_run(d) == 0
    other = write(d.dst / "2024/05/01/2024-05-01_a.txt", b"another file")
    # A file of the same bytes and mtime is no proof that it is this one: it is refused too.
    twin = write(d.dst / "2024/05/01/2024-05-01_b.txt", b"bravo", OLD)
    existing = _listing(other, twin)
    sources = _listing(d.src)
    capsys.readouterr()

    assert _apply(d) == 1
    out = capsys.readouterr().out
    assert f"refused {d.src}/2024-05-01_a.txt: target name taken ({other} exists)" in out
    assert out.splitlines()[-1] == f"applied {d.plan}: 0 moved, 2 refused (2 target name taken)"
    assert _listing(other, twin) == existing
    assert other.read_bytes() == b"another file"
    assert _listing(d.src) == sources  # both sources stay, untouched
    assert not any(name.startswith("2024-05-01_a (") for name in os.listdir(d.dst / "2024/05/01"))


def test_an_entry_planned_for_the_quarantine_is_reported_and_left(dirs, capsys):
    d = dirs
    write(d.src / "2024-02-30_bad.txt", b"x", OLD)
    assert _dry_run(d) == 0
    assert _apply(d) == 1
    out = capsys.readouterr().out
    assert "planned for the quarantine (2024-02-30 is not a real date)" in out
    assert (d.src / "2024-02-30_bad.txt").exists()
    assert list(d.dst.iterdir()) == []


def _edit(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def edit(plan: Path) -> None:
        doc = json.loads(plan.read_text())
        change(doc)
        plan.write_text(json.dumps(doc))

    return edit


def _last(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    """Spoil the last entry only: the ones before it are good, and must not move either."""
    return _edit(lambda doc: change(doc["entries"][-1]))


def _raw(text: bytes) -> Callable[[Path], None]:
    return lambda plan: plan.write_bytes(text)


def _replace_with(make: Callable[[Path], object]) -> Callable[[Path], None]:
    def replace(plan: Path) -> None:
        plan.unlink()
        make(plan)

    return replace


def _escape(entry: dict[str, Any]) -> None:
    """The folder and its target made to agree, out of the destination."""
    entry["target"] = entry["target"].replace(f"/{entry['folder']}/", "/../../etc/")
    entry["folder"] = "../../etc"


def _too_large(plan: Path) -> None:
    with open(plan, "r+b") as f:
        f.truncate(planfile.MAX_BYTES + 1)  # sparse: nothing written


MALFORMED: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_replace_with(lambda p: None), "does not exist"),
    "a folder": (_replace_with(lambda p: p.mkdir()), "is a folder, not a file"),
    "a FIFO": (_replace_with(lambda p: os.mkfifo(p)), "is a FIFO, not a regular file"),
    "too large": (_too_large, "over the limit of 268435456"),
    "not JSON": (_raw(b'{"format": "reorg-tui-plan", '), "is not JSON"),
    "not UTF-8": (_raw(b'{"format": "\xff"}'), "is not JSON"),
    "NaN": (_edit(lambda doc: doc.update(created=float("nan"))), "is not JSON"),
    "not a plan": (_raw(b"[1, 2]"), "is not a reorg-tui plan"),
    "another version": (
        _edit(lambda doc: doc.update(version=2)),
        "has version 2; this reorg-tui reads version 1",
    ),
    "relative source": (_edit(lambda doc: doc.update(source="src")), "'source' must be an absolute"),
    "entries not a list": (_edit(lambda doc: doc.update(entries={})), "'entries' must be a list"),
    "an identity field missing": (_last(lambda e: e["identity"].pop("st_ctime_ns")), "'st_ctime_ns' must be"),
    "an inode as text": (
        _last(lambda e: e["identity"].update(st_ino="12")),
        "'st_ino' must be a whole number",
    ),
    "a negative size": (
        _last(lambda e: e["identity"].update(st_size=-1)),
        "'st_size' must be a whole number",
    ),
    "a folder escaping the destination": (_last(_escape), "'folder' must be a plain path below its root"),
    "an absolute rel": (_last(lambda e: e.update(rel="/etc/passwd")), "'rel' must be a plain path"),
    "a target that disagrees": (
        _last(lambda e: e.update(target="/etc/passwd")),
        "'target' is not the plan's",
    ),
    "a name with a slash": (_last(lambda e: e.update(name="a/b")), "'name' must be a file name"),
    "quarantine not a bool": (
        _last(lambda e: e.update(quarantine="no")),
        "'quarantine' must be true or false",
    ),
    "a lone high surrogate": (_last(lambda e: e.update(name="\ud800")), "holds a character no file name can"),
    "the same file twice": (_edit(lambda doc: doc["entries"].append(doc["entries"][0])), "is planned twice"),
    "an entry not an object": (_edit(lambda doc: doc["entries"].append(7)), "entry 2: not an object"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_plan_file_is_one_line_exit_2_and_nothing_moves(dirs, capsys, kind):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    write(d.src / "2024-05-02_b.txt", b"bravo", OLD)
    assert _dry_run(d) == 0
    assert len(_entries(d)) == 2
    spoil, message = MALFORMED[kind]
    spoil(d.plan)
    before = _listing(d.src, d.dst, d.state)
    capsys.readouterr()

    assert _apply(d) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reorg-tui: error: plan "), err
    assert message in err, err
    assert _listing(d.src, d.dst, d.state) == before


def test_apply_refuses_with_exit_3_while_a_daemon_processes_the_source(daemon_factory):
    daemon = daemon_factory("--settle", "3600")  # it holds the source; fresh files wait to settle
    write(daemon.src / "2024-05-01_a.txt", b"alpha")
    plan = daemon.root / "plan.json"
    flags = ["-s", str(daemon.src), "-d", str(daemon.dst), "--quarantine", str(daemon.q)]
    planned = cli("--dry-run", *flags, "--state-dir", str(daemon.state), "--plan", str(plan))
    assert planned.returncode == 0, planned.stderr  # a dry run takes no lock

    refused = cli("apply", str(plan))  # the daemon's state folder found from the source alone
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr == (
        f"reorg-tui: error: another reorg-tui instance (pid {daemon.proc.pid}) is already "
        f"processing {daemon.src}\n"
    )
    assert (daemon.src / "2024-05-01_a.txt").read_bytes() == b"alpha"
    assert not any(daemon.dst.rglob("2024-05-01_a.txt"))

    assert daemon.stop()[0] == 0
    applied = cli("apply", str(plan))
    assert applied.returncode == 0, applied.stderr
    assert (daemon.dst / "2024/05/01/2024-05-01_a.txt").read_bytes() == b"alpha"


def test_apply_refuses_with_exit_3_while_the_source_lock_is_held(dirs, capsys):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    assert _dry_run(d) == 0
    lock = SourceLock(d.src, d.root / "other-state")
    lock.acquire()
    try:
        assert _apply(d) == 3
    finally:
        lock.release()
    assert "is already processing" in capsys.readouterr().err
    assert (d.src / "2024-05-01_a.txt").exists()


def test_apply_across_filesystems_copies_exactly_the_plan(tmp_path, tmpfs, capsys):
    d = Dirs(tmp_path)
    d.dst.rmdir()
    d.dst = tmpfs("dst")
    write(d.src / "2024-05-01_a.txt", b"alpha" * 1000, OLD)
    write(d.src / "2024-05-01_b.txt", b"bravo", OLD)
    assert _dry_run(d) == 0
    _rewrite_with_mtime_set_back(d.src / "2024-05-01_b.txt", b"BRAVO")
    capsys.readouterr()

    assert _apply(d, "--verify") == 1
    out = capsys.readouterr().out
    assert f"copied {d.src}/2024-05-01_a.txt -> {d.dst}/2024/05/01/2024-05-01_a.txt" in out
    assert "changed since planning" in out
    assert (d.dst / "2024/05/01/2024-05-01_a.txt").read_bytes() == b"alpha" * 1000
    assert sorted(os.listdir(d.src)) == ["2024-05-01_b.txt"]
    assert os.listdir(d.dst / ".reorg-tmp") == []


def test_a_plan_is_written_only_by_a_dry_run_and_never_into_the_folders_it_describes(dirs):
    d = dirs
    write(d.src / "2024-05-01_a.txt", b"alpha", OLD)
    for plan, message in (
        (d.src / "plan.json", "is inside the source"),
        (d.dst / "sub" / "plan.json", "does not exist"),
        (d.dst / "plan.json", "is inside the destination"),
        (d.root / "nowhere" / "plan.json", "does not exist"),
    ):
        result = cli("--dry-run", *d.flags(), "--plan", str(plan))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1
    result = cli(*d.flags(), "--once", "--plan", str(d.plan))
    assert result.returncode == 2 and "give --dry-run with it" in result.stderr
    assert sorted(os.listdir(d.src)) == ["2024-05-01_a.txt"]
    assert list(d.dst.iterdir()) == [] and not d.plan.exists()
