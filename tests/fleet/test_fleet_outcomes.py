"""What becomes of a fleet's files that do not simply move: a retry stays with the instance that
failed it (under its claim), a file with an impossible date is quarantined into the shared
quarantine, which `quarantine list` shows whichever instance put it there."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from reorg_tui.engine import events as ev
from tests.conftest import OLD, cli, make_settings, running, unmark, wait_for, write


def states(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM reorg_files GROUP BY state").fetchall())


def fleet_settings(tmp_path: Path, name: str, url: str, **extra: object):
    return make_settings(
        tmp_path,
        source=tmp_path / "source",
        dest=tmp_path / "dest",
        quarantine=tmp_path / "quarantine",
        state_dir=tmp_path / f"state-{name}",
        coordinator=url,
        **{"claim_lease": 5.0, **extra},
    )


def test_a_retry_stays_under_its_claim_until_the_fault_clears(
    tmp_path: Path, database: str, immutable
) -> None:
    a = fleet_settings(tmp_path, "a", database, max_retries=50)
    b = fleet_settings(tmp_path, "b", database, max_retries=50)
    folder = a.dest / "2024/12/12"
    folder.mkdir(parents=True)
    immutable(folder)  # EPERM for root too: the move fails, and is retried
    write(a.source / "2024-12-12_later.txt", b"later", OLD)
    with running(a) as (ea, ra), running(b) as (eb, rb):
        wait_for(lambda: ra.of(ev.Retried) or rb.of(ev.Retried), 20, "a retry")
        wait_for(lambda: len(ra.of(ev.Retried)) + len(rb.of(ev.Retried)) >= 3, 20, "three tries")
        # Retried by the instance that failed it, never handed to the other meanwhile.
        assert not (ra.of(ev.Retried) and rb.of(ev.Retried))
        assert states(database) == {"claimed": 1}
        unmark(folder)
        wait_for((folder / "2024-12-12_later.txt").exists, 20, "the move once the fault clears")
        wait_for(lambda: states(database) == {"done": 1}, 10, "its row done")
    assert not (a.source / "2024-12-12_later.txt").exists()


def test_a_file_of_an_impossible_date_is_quarantined_once_and_listed(tmp_path: Path, database: str) -> None:
    a = fleet_settings(tmp_path, "a", database)
    b = fleet_settings(tmp_path, "b", database)
    write(a.source / "2024-02-30_never.txt", b"never", OLD)
    for i in range(50):
        write(a.source / f"2024-03-{1 + i % 28:02d}_ok{i}.txt", f"ok{i}", OLD)
    with running(a) as (ea, _), running(b) as (eb, _):
        wait_for(lambda: states(database) == {"done": 50, "quarantined": 1}, 30, "every row final")
    listed = cli("quarantine", "list", "-q", str(a.quarantine))
    assert listed.returncode == 0, listed.stderr
    assert "2024-02-30_never.txt" in listed.stdout and "1 file(s)" in listed.stdout
    # Each instance's ledger indexes the shared quarantine, checked against the folder's listing
    # when it changed: looked at through either instance's state, every instance's items show.
    for state in (a.state_dir, b.state_dir):
        seen = cli("quarantine", "list", "-q", str(a.quarantine), "--state-dir", str(state))
        assert seen.returncode == 0, seen.stderr
        assert "2024-02-30_never.txt" in seen.stdout and "1 file(s)" in seen.stdout


def test_a_paused_instance_hands_its_claims_back_to_the_fleet(tmp_path: Path, database: str) -> None:
    from reorg_tui.engine import steps

    a = fleet_settings(tmp_path, "a", database, batch_size=20, claim_lease=600.0)
    b = fleet_settings(tmp_path, "b", database, batch_size=20, claim_lease=600.0)
    for i in range(60):
        write(a.source / f"2024-04-{1 + i % 28:02d}_f{i}.txt", f"f{i}", OLD)
    held, go = threading.Event(), threading.Event()

    def hold_the_first_batch(step: str) -> None:
        if step == "claimed" and not held.is_set():
            held.set()  # a holds its first batch here, its second claimed and waiting behind it
            go.wait(30)

    with steps.watch(hold_the_first_batch), running(a) as (ea, _):
        assert held.wait(20), "a's first batch"
        ea.pause()
        go.set()
        # Its waiting claims go back at once: b, started now, moves them long before the
        # 600 s lease would have let it.
        with running(b) as (eb, _):
            wait_for(lambda: states(database) == {"done": 60}, 30, "every row done")
            assert eb.snapshot().totals.moved > 0
    assert not list(a.source.rglob("*.txt"))


def test_a_file_gone_from_its_source_is_found_at_its_target_or_a_collision_name(tmp_path: Path) -> None:
    from reorg_tui.engine.fleet import Fleet
    from reorg_tui.engine.ledger_pg import Claim, FileState

    settings = fleet_settings(tmp_path, "a", "postgresql://nobody@nowhere/x")  # (no statement runs)
    fleet = Fleet(
        settings,
        intake=None,  # type: ignore[arg-type]
        bus=None,  # type: ignore[arg-type]
        snapshot=None,  # type: ignore[arg-type]
        forget=lambda rel: None,
        retrying=lambda rel: False,
        wake=threading.Event(),
    )
    folder = settings.dest / "2024/05/01"
    write(folder / "2024-05-01_a.txt", b"someone else's, first")
    ours = write(folder / "2024-05-01_a (1).txt", b"ours, moved by a stalled instance")
    st = ours.stat()

    def claim(rel: str, ino: int) -> Claim:
        return Claim(7, rel, 3, ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    found = fleet._gone(claim("in/2024-05-01_a.txt", st.st_ino))
    assert (found.state, found.target) == (FileState.DONE, str(ours))
    assert fleet._gone(claim("in/2024-05-01_a.txt", st.st_ino + 12345)).state == FileState.VANISHED
    assert fleet._gone(claim("2024-05-02_b.txt", st.st_ino)).state == FileState.VANISHED
