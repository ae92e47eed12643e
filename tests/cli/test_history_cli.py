"""`reorg-tui history`, end to end: a real engine moves real files, the real command line (its own
process) reads the ledger back, as an operator asks "where did my file go?"."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path

from reorg_tui.engine import default_state_dir
from reorg_tui.engine import events as ev
from reorg_tui.engine.ledger import LEDGER_NAME
from tests.conftest import OLD, cli, make_settings, run_once, running, unmark, wait_for, write


def _history(state: Path, *args: str):
    return cli("history", "--state-dir", str(state), *args)


def _moved(tmp_path: Path, *names: str, **overrides: object):
    settings = make_settings(tmp_path, **overrides)
    for name in names:
        write(settings.source / name, name, OLD)
    run_once(settings)
    return settings


def _ledger_files(state: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in state.iterdir() if "ledger" in p.name}


def test_a_delivered_file_shows_where_it_went_from_the_source_alone(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    settings = make_settings(
        tmp_path, source=source, state_dir=default_state_dir(Path(os.path.realpath(source)))
    )
    write(source / "2024-11-11_report.pdf", b"pdf", OLD)
    run_once(settings)
    shown = cli("history", "--source", str(source), "2024-11-11_report.pdf")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "delivered  (1 attempt)" in lines[0]
    assert lines[1] == f"  from  {source / '2024-11-11_report.pdf'}"
    assert lines[2] == f"  to    {settings.dest / '2024/11/11/2024-11-11_report.pdf'}"
    assert (settings.dest / "2024/11/11/2024-11-11_report.pdf").read_bytes() == b"pdf"


def test_the_history_of_a_running_daemon_is_found_from_its_source(daemon_factory):
    daemon = daemon_factory()  # started with its own --state-dir: found through its pointer
    write(daemon.src / "2024-05-06_live.txt", b"live", OLD)
    wait_for((daemon.dst / "2024/05/06/2024-05-06_live.txt").exists, what="the move")
    wait_for(lambda: "live" in cli("history", "-s", str(daemon.src), "*live*").stdout, what="its row")
    shown = cli("history", "-s", str(daemon.src), "*live*", "--json")
    [row] = json.loads(shown.stdout)
    assert row["target"] == str(daemon.dst / "2024/05/06/2024-05-06_live.txt")
    assert row["outcome"] == "delivered"


def test_a_file_that_failed_twice_then_moved_shows_its_attempts_and_their_errors(tmp_path, immutable):
    settings = make_settings(tmp_path, max_retries=50, retry_base_delay=1.0, retry_max_delay=5.0)
    folder = settings.dest / "2024/12/12"
    folder.mkdir(parents=True)
    immutable(folder)  # EPERM on every try, until cleared
    write(settings.source / "2024-12-12_late.txt", b"late", OLD)
    with running(settings) as (_engine, rec):
        wait_for(lambda: len(rec.of(ev.Retried)) >= 2, what="two failed attempts")
        unmark(folder)  # the third try (at least a second later) succeeds
        wait_for((folder / "2024-12-12_late.txt").exists, what="the move once the fault clears")
        wait_for(lambda: rec.of(ev.Moved), what="the moved event")
    assert len(rec.of(ev.Retried)) == 2

    shown = _history(settings.state_dir, "2024-12-12_late.txt")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "delivered  (3 attempts)" in lines[0]
    assert lines[2] == f"  to    {folder / '2024-12-12_late.txt'}"
    assert lines[3] == "  earlier attempts:"
    assert len(lines) == 6 and all("EPERM" in line for line in lines[4:])
    assert re.fullmatch(r"    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .*EPERM.*", lines[4]), "stamped"

    [row] = json.loads(_history(settings.state_dir, "2024-12-12_late.txt", "--json").stdout)
    assert row["attempts"] == 3 and len(row["errors"]) == 2
    assert all("EPERM" in e for e in row["errors"])


def test_a_glob_matches_file_names_never_a_folder_on_the_way(tmp_path):
    settings = _moved(tmp_path, "2024-11-01_a.txt", "2024-11-02_b.txt", "2024-12-01_c.txt")
    shown = _history(settings.state_dir, "2024-11-*", "--json")
    assert sorted(os.path.basename(r["target"]) for r in json.loads(shown.stdout)) == [
        "2024-11-01_a.txt",
        "2024-11-02_b.txt",
    ]
    # DEST/2024/11/... has a folder "11": a * never spans the slash before the name.
    assert json.loads(_history(settings.state_dir, "11*", "--json").stdout) == []
    exact = _history(settings.state_dir, "2024-12-01_c.txt", "--json")
    assert [r["target"] for r in json.loads(exact.stdout)] == [
        str(settings.dest / "2024/12/01/2024-12-01_c.txt")
    ]
    assert json.loads(_history(settings.state_dir, "c.txt", "--json").stdout) == [], "no glob: the whole name"
    none = _history(settings.state_dir, "nothing-*")
    assert (
        none.returncode == 0 and none.stdout.strip() == "no history: no transfer of a file matching nothing-*"
    )


def test_since_leaves_out_older_transfers_and_limit_keeps_the_newest(tmp_path):
    settings = _moved(tmp_path, "2024-01-01_old.txt")
    with sqlite3.connect(settings.state_dir / LEDGER_NAME) as db:  # as if it moved two hours ago
        db.execute("UPDATE transfers SET started = started - 7200, finished = finished - 7200")
    db.close()
    for name in ("2024-01-02_new.txt", "2024-01-03_newer.txt"):
        write(settings.source / name, name, OLD)
        run_once(settings)
    recent = json.loads(_history(settings.state_dir, "2024-*", "--since", "1h", "--json").stdout)
    assert [os.path.basename(r["source"]) for r in recent] == ["2024-01-03_newer.txt", "2024-01-02_new.txt"]
    every = json.loads(_history(settings.state_dir, "2024-*", "--since", "3h", "--json").stdout)
    assert len(every) == 3 and every[-1]["started"] < time.time() - 7000
    limited = _history(settings.state_dir, "2024-*", "--limit", "1")
    assert limited.stdout.count("  from  ") == 1 and "2024-01-03_newer.txt" in limited.stdout
    assert "the newest 1 shown" in limited.stdout
    bad = _history(settings.state_dir, "x", "--since", "soon")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr


def test_json_is_an_array_with_undecodable_bytes_as_surrogates_and_names_escaped_on_a_terminal(tmp_path):
    settings = make_settings(tmp_path)
    odd = os.fsencode(settings.source) + b"/2024-03-03_caf\xe9.txt"  # Latin-1, not UTF-8
    with open(odd, "wb") as f:
        f.write(b"odd")
    os.utime(odd, (OLD, OLD))
    write(settings.source / "2024-03-04_\x1b[31mred.txt", b"red", OLD)
    run_once(settings)
    rows = json.loads(_history(settings.state_dir, "2024-03-0*", "--json").stdout)
    by_name = {os.path.basename(r["source"]): r for r in rows}
    latin = by_name["2024-03-03_caf\udce9.txt"]
    assert os.fsencode(latin["source"]) == odd
    assert os.path.exists(os.fsencode(latin["target"]))
    assert {"id", "kind", "step", "outcome", "started", "finished", "attempts", "errors", "batch"} <= set(
        latin
    )
    text = _history(settings.state_dir, "2024-03-0*").stdout
    assert "\x1b" not in text and "2024-03-04_\\x1b[31mred.txt" in text and "caf\\xe9.txt" in text


def test_no_ledger_is_one_line_and_exit_4_and_creates_nothing(tmp_path):
    state = tmp_path / "never-ran"
    shown = _history(state, "anything")
    assert shown.returncode == 4
    assert shown.stderr.startswith("reorg-tui: error: no history: no ledger at ")
    assert shown.stderr.count("\n") == 1 and shown.stdout == ""
    assert not state.exists()
    missing = cli("history", "x")
    assert missing.returncode == 2 and "--source" in missing.stderr


def test_a_ledger_from_a_newer_version_is_refused_with_one_line_exit_2(tmp_path):
    settings = _moved(tmp_path, "2024-01-01_a.txt")
    with sqlite3.connect(settings.state_dir / LEDGER_NAME) as db:
        db.execute("PRAGMA user_version=999")
    db.close()
    shown = _history(settings.state_dir, "*")
    assert shown.returncode == 2 and shown.stdout == ""
    assert shown.stderr.count("\n") == 1 and "written by a newer reorg-tui (schema 999" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_reading_the_history_changes_no_file_of_the_ledger(tmp_path):
    settings = _moved(tmp_path, "2024-01-01_a.txt")
    before = _ledger_files(settings.state_dir)
    assert list(before) == [LEDGER_NAME], "a closed ledger keeps no -wal or -shm"
    for _ in range(2):
        assert _history(settings.state_dir, "*").returncode == 0
    assert _ledger_files(settings.state_dir) == before
