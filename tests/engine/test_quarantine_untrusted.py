"""What the quarantine holds is input: an item folder swapped for a symlink, a record (or a
ledger row) edited to name something else. Nothing outside the quarantine is ever removed, read
or moved on its say, and what is shown of it cannot drive a terminal."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.ledger import LEDGER_NAME, open_ledger
from reorg_tui.engine.quarantine import QuarantineError, QuarantineStore
from tests.conftest import OLD, cli, write


def _put(store: QuarantineStore, src: Path):
    return store.put(
        Tree(str(src.parent)), src.name, reason="broken", intended=None, attempts=1, errors=["e"]
    )


def _swap_for_link(store: QuarantineStore, item_id: str, name: str, outside: Path) -> Path:
    """The item's folder replaced by a symlink to a folder outside holding a file of its name."""
    victim = write(outside / name, b"precious")
    folder = store.root / item_id
    os.unlink(folder / name)
    folder.rmdir()
    folder.symlink_to(outside)
    return victim


@pytest.mark.parametrize("op", ["delete", "release", "get"])
def test_an_item_folder_swapped_for_a_symlink_is_refused_and_nothing_outside_is_touched(tmp_path, op):
    store = QuarantineStore(tmp_path / "q")
    record = _put(store, write(tmp_path / "src/2024-01-01_a.txt", b"a"))
    victim = _swap_for_link(store, record.id, record.name, tmp_path / "outside")
    with pytest.raises(QuarantineError, match="symlink|missing"):
        if op == "delete":
            store.delete(record.id)
        elif op == "release":
            store.release(record.id, tmp_path / "src")
        else:
            store.get(record.id)
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "src/2024-01-01_a.txt").exists()


HOSTILE_NAMES = [
    "../../outside/victim",
    "a/b",
    "..",
    ".",
    "",
    "x\0y",
    "bell\x07.txt",
    "esc\x1b[2J.txt",
    "nl\n.txt",
]


def _record_json(item_id: str, name: str) -> dict:
    return {"id": item_id, "name": name, "original": "", "intended": None, "reason": "x", "attempts": 0,
            "errors": [], "quarantined_at": 0, "first_failed_at": 0, "size": 1}  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_record_file_naming_a_hostile_name_is_refused(tmp_path, name):
    root = tmp_path / "q"
    victim = write(tmp_path / "outside/victim", b"precious")
    item_id = "20240101T000000-0badc0de"
    (root / item_id).mkdir(parents=True)
    write(root / item_id / "plain.txt", b"p")
    if name and name not in (".", "..") and "/" not in name and "\0" not in name:
        write(root / item_id / name, b"a file of that very name")
    (root / f"{item_id}.json").write_text(json.dumps(_record_json(item_id, name)))
    store = QuarantineStore(root)
    if name.isprintable() or "\0" in name:  # a way out: refused
        for call in (lambda: store.delete(item_id), lambda: store.get(item_id)):
            with pytest.raises(QuarantineError):
                call()
        assert [r.name for r in store.list()] == []  # not indexed from a record that is not one
    else:  # a control character: a real file may have one; it is the item, deleted as such
        assert [r.name for r in store.list()] == [name]
        store.delete(item_id)
        assert [p.name for p in (root / item_id).iterdir()] == ["plain.txt"]
    assert victim.read_bytes() == b"precious"


def _indexed(tmp_path: Path) -> tuple[QuarantineStore, str]:
    (tmp_path / "state").mkdir()
    store = QuarantineStore(tmp_path / "q", ledger=open_ledger(tmp_path / "state"))
    record = _put(store, write(tmp_path / "src/2024-01-01_a.txt", b"a"))
    store.repair()
    return store, record.id


@pytest.mark.parametrize(
    ("column", "value"),
    [("name", b"../../outside/victim"), ("name", b"esc\x1b[2J"), ("name", b""), ("name", 12),
     ("id", "../../outside"), ("id", "id\x1b[2J"), ("size", "12"), ("attempts", 1.5),
     ("quarantined_at", "yesterday"), ("original", 5), ("reason", 7), ("errors", "[1, 2]")],
)  # fmt: skip
def test_a_ledger_row_edited_by_hand_is_never_acted_on_and_the_listing_goes_on(tmp_path, column, value):
    """Rows changed with the sqlite3 module, as an attacker (or a confused operator) would."""
    store, item_id = _indexed(tmp_path)
    victim = write(tmp_path / "outside/victim", b"precious")
    write(tmp_path / "q" / "victim", b"in the quarantine folder, not an item")
    other = _put(store, write(tmp_path / "src/2024-01-01_b.txt", b"b"))
    with sqlite3.connect(tmp_path / "state" / LEDGER_NAME) as db:
        db.execute(f"UPDATE quarantine SET {column} = ? WHERE id = ?", (value, item_id))
    db.close()
    listed = store.list()
    assert other.id in [r.id for r in listed]
    for record in listed:
        assert "/" not in record.name and record.name not in ("", "..") and record.id.isprintable()
        assert type(record.size) is int and type(record.attempts) is int
    if column != "id":
        try:
            store.delete(item_id)
        except QuarantineError:
            pass
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "q" / "victim").read_bytes().startswith(b"in the")
    assert store.get(other.id).name == "2024-01-01_b.txt"


def test_a_record_with_a_wrong_type_is_set_aside_and_the_listing_goes_on(tmp_path):
    """`"size": "12"` once made `quarantine list` exit 70."""
    store = QuarantineStore(tmp_path / "q")
    good = _put(store, write(tmp_path / "src/2024-01-01_a.txt", b"a"))
    bad = _put(QuarantineStore(tmp_path / "q"), write(tmp_path / "src/2024-01-01_b.txt", b"b"))
    path = tmp_path / "q" / f"{bad.id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "size": "12"}))
    fresh = QuarantineStore(tmp_path / "q")
    assert good.id in [r.id for r in fresh.list()]
    listed = cli("quarantine", "list", "--quarantine", str(tmp_path / "q"))
    assert listed.returncode == 0, listed.stderr
    assert good.id in listed.stdout


def _quarantined_by_the_command_line(tmp_path: Path) -> tuple[Path, dict[str, str], dict]:
    """A file quarantined by a real run: the destination, the environment and its listing."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src / "2024-02-30_one.txt", b"one", OLD)
    dst.mkdir()
    env = {"REORG_SOURCE": str(src), "REORG_DEST": str(dst), "REORG_STATE_DIR": str(tmp_path / "state")}
    assert cli("--once", "--settle", "0", env=env).returncode == 1
    [item] = json.loads(cli("quarantine", "list", "--json", env=env).stdout)
    return dst, env, item


def test_ids_and_names_from_the_state_are_escaped_when_printed(tmp_path):
    """A ledger row whose name or id holds terminal escapes: list and show print them escaped."""
    dst, env, item = _quarantined_by_the_command_line(tmp_path)
    with sqlite3.connect(tmp_path / "state" / LEDGER_NAME) as db:
        db.execute("UPDATE quarantine SET reason = ?, original = ? WHERE id = ?",
                   (b"r\x1b[31m", b"/o\x1b]0;pwned\x07", item["id"]))  # fmt: skip
    db.close()
    for args in (("list",), ("show", item["id"])):
        shown = cli("quarantine", *args, env=env)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    refused = cli("quarantine", "show", "bad\x1b[2Jid", env=env)
    assert refused.returncode == 4 and "\x1b" not in refused.stderr


def test_the_command_line_delete_of_a_symlinked_item_removes_nothing_outside(tmp_path):
    dst, env, item = _quarantined_by_the_command_line(tmp_path)
    store = QuarantineStore(dst / "_quarantine")
    victim = _swap_for_link(store, item["id"], item["name"], tmp_path / "outside")
    for verb in ("delete", "release", "show"):
        done = cli("quarantine", verb, item["id"], *(["--yes"] if verb == "delete" else []), env=env)
        assert done.returncode in (1, 4), (verb, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert victim.read_bytes() == b"precious", verb
    listed = cli("quarantine", "list", env=env)
    assert listed.returncode == 0, listed.stderr


def test_a_record_whose_original_climbs_out_of_the_source_is_released_into_it_or_refused(tmp_path):
    """Where a release puts a file comes from the record's ``original``: input too."""
    source = tmp_path / "src"
    store = QuarantineStore(tmp_path / "q")
    record = _put(store, write(source / "2024-01-01_a.txt", b"a"))
    path = tmp_path / "q" / f"{record.id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "original": f"{source}/../../outside/x"}))
    fresh = QuarantineStore(tmp_path / "q")
    try:
        released = fresh.release(record.id, source)
    except QuarantineError:
        assert (tmp_path / "q" / record.id / record.name).read_bytes() == b"a"  # still quarantined
    else:
        assert Path(released).parent == source
    assert not (tmp_path / "outside").exists()


def test_a_release_the_source_cannot_take_is_one_line_and_exit_1_and_the_file_stays(tmp_path, immutable):
    """chattr +i on the source: a write error that holds for root too."""
    dst, env, item = _quarantined_by_the_command_line(tmp_path)
    immutable(tmp_path / "src")
    done = cli("quarantine", "release", item["id"], env=env)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("reorg-tui: error:")]
    assert len(errors) == 1 and "internal error" not in done.stderr
    assert (dst / "_quarantine" / item["id"] / item["name"]).read_bytes() == b"one"
    assert [r["id"] for r in json.loads(cli("quarantine", "list", "--json", env=env).stdout)] == [item["id"]]


def test_a_release_whose_folder_is_now_a_file_is_one_line_and_exit_1(tmp_path):
    """The record names ``src/sub/...``; ``src/sub`` is a file now."""
    dst, env, item = _quarantined_by_the_command_line(tmp_path)
    path = dst / "_quarantine" / f"{item['id']}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "original": str(tmp_path / "src/sub/x.txt")}))
    write(tmp_path / "src/sub", b"a file where the folder was")
    with sqlite3.connect(tmp_path / "state" / LEDGER_NAME) as db:  # the index says so too
        db.execute("UPDATE quarantine SET original = ?", (str(tmp_path / "src/sub/x.txt").encode(),))
    db.close()
    done = cli("quarantine", "release", item["id"], env=env)
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr
    assert (dst / "_quarantine" / item["id"] / item["name"]).read_bytes() == b"one"
