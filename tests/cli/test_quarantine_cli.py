"""`reorg-tui quarantine list|show|release|delete`, as an operator or a script uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reorg_tui.engine.control import request
from tests.conftest import OLD, cli, unmark, wait_for, write


def _quarantine_two(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    write(src / "2024-02-30_one.txt", b"one", OLD)
    write(src / "2023-02-29_two.txt", b"two", OLD)
    env = {"REORG_SOURCE": str(src), "REORG_DEST": str(dst), "REORG_STATE_DIR": str(tmp_path / "state")}
    ran = cli("--once", "--settle", "0", env=env)
    assert ran.returncode == 1, ran.stderr
    return src, dst, env


def test_list_show_release_delete(tmp_path):
    src, dst, env = _quarantine_two(tmp_path)
    listed = cli("quarantine", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert sorted(i["name"] for i in items) == ["2023-02-29_two.txt", "2024-02-30_one.txt"]
    one = next(i for i in items if i["name"] == "2024-02-30_one.txt")
    assert one["reason"] == "2024-02-30 is not a real date"
    assert one["original"] == str(src / "2024-02-30_one.txt")

    human = cli("quarantine", "list", env=env)
    assert "2 file(s)" in human.stdout and "2024-02-30_one.txt" in human.stdout

    shown = cli("quarantine", "show", one["id"], env=env)
    assert shown.returncode == 0
    assert f"original:    {src / '2024-02-30_one.txt'}" in shown.stdout
    assert "not a real date" in shown.stdout

    released = cli("quarantine", "release", one["id"], "--json", env=env)
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout) == [{"id": one["id"], "released_to": str(src / "2024-02-30_one.txt")}]
    assert (src / "2024-02-30_one.txt").read_bytes() == b"one"

    two = next(i for i in items if i["name"] == "2023-02-29_two.txt")
    refused = cli("quarantine", "delete", two["id"], env=env)  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    deleted = cli("quarantine", "delete", two["id"], "--yes", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(cli("quarantine", "list", "--json", env=env).stdout) == []
    assert not list((dst / "_quarantine").rglob("2023-02-29_two.txt"))


def test_unknown_id_is_one_line_and_exit_code_4(tmp_path):
    _src, _dst, env = _quarantine_two(tmp_path)
    for verb in ("show", "release", "delete"):
        result = cli(
            "quarantine", verb, "20990101T000000-00000000", "--yes" if verb == "delete" else "--json", env=env
        )
        assert result.returncode == 4, (verb, result.stderr)
        assert (
            result.stderr.strip()
            == "reorg-tui: error: no quarantined file with id '20990101T000000-00000000'"
        )


def test_missing_quarantine_folder_is_a_usage_error(tmp_path):
    result = cli("quarantine", "list", "--quarantine", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def _ids(env: dict[str, str]) -> dict[str, str]:
    """name -> id of every quarantined file."""
    return {i["name"]: i["id"] for i in json.loads(cli("quarantine", "list", "--json", env=env).stdout)}


def _age(tmp_path, quarantine, item_id, seconds):
    """Make an item look older: in its record, and in the ledger's index, which keeps a copy of
    the record as it was written (a record edited by hand is not read again; see quarantine.py)."""
    import sqlite3

    record = quarantine / f"{item_id}.json"
    aged = json.loads(record.read_text())
    aged["quarantined_at"] -= seconds
    record.write_text(json.dumps(aged))
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite3") as db:
        db.execute("UPDATE quarantine SET quarantined_at = ? WHERE id = ?", (aged["quarantined_at"], item_id))


def test_release_by_reason_or_all_and_delete_by_age_act_on_the_matching_files(tmp_path):
    src, dst, env = _quarantine_two(tmp_path)
    write(dst / "2025/01/03/2025-01-03_three.txt", b"taken")  # another reason: the name is taken
    write(src / "2025-01-03_three.txt", b"three", OLD)

    def again() -> None:
        assert cli("--once", "--settle", "0", "--on-conflict", "quarantine", env=env).returncode == 1

    again()
    reasons = {
        i["name"]: i["reason"] for i in json.loads(cli("quarantine", "list", "--json", env=env).stdout)
    }
    assert "not a real date" not in reasons["2025-01-03_three.txt"], reasons

    by_reason = cli("quarantine", "release", "--reason", "NOT A REAL DATE", "--json", env=env)
    assert by_reason.returncode == 0, by_reason.stderr
    assert sorted(r["released_to"] for r in json.loads(by_reason.stdout)) == [
        str(src / "2023-02-29_two.txt"),
        str(src / "2024-02-30_one.txt"),
    ]
    assert list(_ids(env)) == ["2025-01-03_three.txt"]

    again()  # both back in the quarantine
    every = cli("quarantine", "release", "--all", env=env)
    assert every.returncode == 0, every.stderr
    assert every.stdout.count("released ") == 3 and _ids(env) == {}
    assert sorted(p.name for p in src.iterdir()) == [
        "2023-02-29_two.txt",
        "2024-02-30_one.txt",
        "2025-01-03_three.txt",
    ]

    again()
    ids = _ids(env)
    _age(tmp_path, dst / "_quarantine", ids["2024-02-30_one.txt"], 3 * 86_400)
    refused = cli("quarantine", "delete", "--older-than", "2d", env=env)  # the --yes rule holds
    assert refused.returncode == 2 and "--yes" in refused.stderr
    old = cli("quarantine", "delete", "--older-than", "2d", "--yes", env=env)
    assert old.returncode == 0, old.stderr
    assert old.stdout.strip() == f"deleted {ids['2024-02-30_one.txt']} (2024-02-30_one.txt)"
    assert sorted(_ids(env)) == ["2023-02-29_two.txt", "2025-01-03_three.txt"]
    none = cli("quarantine", "delete", "--older-than", "2d", "--yes", env=env)
    assert none.returncode == 0 and none.stdout.strip() == "no quarantined file matches: nothing deleted"


def test_a_bulk_selection_must_be_asked_for(tmp_path):
    _src, _dst, env = _quarantine_two(tmp_path)
    some_id = next(iter(_ids(env).values()))
    for args, fragment in [
        (["release"], "name the files: ids, or --all, --reason TEXT or --older-than AGE"),
        (["delete", "--yes"], "name the files: ids, or --all, --reason TEXT or --older-than AGE"),
        (["release", some_id, "--all"], "give ids, or --all / --reason / --older-than, not both"),
        (["delete", "--older-than", "soon", "--yes"], "--older-than: 'soon' is not an age"),
    ]:
        result = cli("quarantine", *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("reorg-tui: error: ") and fragment in line, line
    assert len(_ids(env)) == 2  # nothing was released or deleted


def test_the_listing_words_ages_in_the_largest_unit_they_fill_rounded():
    from reorg_tui.cli.quarantine import _age_text

    cases = {0.2: "a moment", 1: "a second", 59: "59 seconds", 59.6: "a minute", 90: "2 minutes",
             3599: "an hour", 5400: "2 hours", 86_399: "a day", 10**6: "12 days"}  # fmt: skip
    assert {age: _age_text(age) for age in cases} == cases


def _one_line(result, code: int, fragment: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("reorg-tui: warning:")]
    assert len(errors) == 1 and errors[0].startswith("reorg-tui: error:"), result.stderr
    assert fragment in errors[0], errors[0]


@pytest.mark.parametrize("through", ["the-store", "a-running-daemon"])
def test_a_release_the_filesystem_refuses_is_one_line_exit_1_and_the_file_stays(
    through, daemon_factory, immutable
):
    """The file came from a subfolder of the source that is gone now, and the source is
    immutable (chattr +i holds even for root): its folder cannot be made again. Never exit 70 (or
    2, from the daemon's refusal); and a daemon asked goes on answering."""
    d = daemon_factory("--recursive", "--retry-base-delay", "0.05", "--max-retries", "0")
    write(d.src / "sub/2024-02-30_deep.txt", b"deep", OLD)
    wait_for(lambda: list(d.q.glob("*/2024-02-30_deep.txt")), what="the file to be quarantined")
    (d.src / "sub").rmdir()
    if through == "the-store":
        d.stop()
    [item] = d.q.glob("*/2024-02-30_deep.txt")
    env = {"REORG_SOURCE": str(d.src), "REORG_STATE_DIR": str(d.state)}
    immutable(d.src)

    result = cli("quarantine", "release", item.parent.name, "-q", str(d.q), env=env)

    _one_line(result, 1, f"cannot release {item.parent.name} (2024-02-30_deep.txt)")
    assert "Traceback" not in result.stderr
    assert item.read_bytes() == b"deep"  # still in the quarantine, listed
    assert [
        i["name"] for i in json.loads(cli("quarantine", "list", "-q", str(d.q), "--json", env=env).stdout)
    ] == ["2024-02-30_deep.txt"]
    if through == "a-running-daemon":
        assert request(d.state, "ping") == "running"  # its control thread lived through it
    unmark(d.src)
    again = cli("quarantine", "release", item.parent.name, "-q", str(d.q), env=env)
    assert again.returncode == 0, again.stderr

    # Released (a daemon quarantines it again at once: its date does not exist): in one place.
    def places() -> list[Path]:
        return [*d.q.glob("*/2024-02-30_deep.txt"), *d.src.rglob("2024-02-30_deep.txt")]

    wait_for(lambda: len(places()) == 1, what="the file in one place")  # (not caught mid-rename)
    assert [p.read_bytes() for p in places()] == [b"deep"] and item not in places()


@pytest.mark.parametrize("how", ["removed", "folder-swapped-for-a-symlink"])
def test_show_and_release_of_a_vanished_file_are_one_line_and_exit_1(tmp_path, how):
    src, dst, env = _quarantine_two(tmp_path)
    ids = _ids(env)
    item = dst / "_quarantine" / ids["2024-02-30_one.txt"]
    aside = tmp_path / "aside"
    item.rename(aside)
    if how == "folder-swapped-for-a-symlink":
        item.symlink_to(aside)  # the file is "there", through a link the store never follows
    for verb in ("show", "release"):
        result = cli("quarantine", verb, item.name, env=env)
        _one_line(result, 1, f"{item.name}")
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert (aside / "2024-02-30_one.txt").read_bytes() == b"one"
    assert not (src / "2024-02-30_one.txt").exists()  # nothing came back into the source


def test_a_release_whose_record_cannot_be_removed_says_the_file_was_released(tmp_path, immutable):
    """The quarantine folder itself immutable: the file leaves its item's folder (which is not),
    but its record beside it cannot be removed. The file is in the source, once; the error says
    so (exit 1), and the listing no longer shows it."""
    src, dst, env = _quarantine_two(tmp_path)
    item_id = _ids(env)["2024-02-30_one.txt"]
    immutable(dst / "_quarantine")
    result = cli("quarantine", "release", item_id, env=env)
    _one_line(result, 1, f"released {item_id} to {src / '2024-02-30_one.txt'}, but its record")
    assert (src / "2024-02-30_one.txt").read_bytes() == b"one"
    assert not (dst / "_quarantine" / item_id / "2024-02-30_one.txt").exists()
    assert "2024-02-30_one.txt" not in _ids(env)
