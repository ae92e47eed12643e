"""``undo`` on a fleet's source, with real daemons and a real PostgreSQL: refused while any
instance of the fleet runs (exit 3) and without the coordinator's URL (exit 2); with the fleet
stopped, the files go back, and the fleet, started again, leaves them in the source (the lister's
publish meets their 'undone' rows) until one changes (not its mode or an extended attribute:
its content, size or mtime), which it then delivers once; the undo undone, nothing more is held."""

from __future__ import annotations

import os
import signal
import time

import psycopg

from tests.conftest import OLD, cli, files_under, wait_for
from tests.fleet.conftest import Daemons
from tests.fleet.test_fleet import files_in_source, make_files, rows


def undo(daemons: Daemons, name: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        "undo", "--since", "1h", "--yes", "--state-dir", str(daemons.state_dir(name)),
        "-d", str(daemons.dest), *extra,
    )  # fmt: skip


def test_an_undo_on_a_fleet_is_refused_while_it_runs_and_held_by_the_whole_fleet_after(
    daemons: Daemons,
) -> None:
    made = make_files(daemons.source, 0, 400)
    a, b = daemons.start("a"), daemons.start("b")
    wait_for(lambda: files_in_source(daemons) == 0 and rows(daemons.url) == {"done": 400}, 60, "moved")
    time.sleep(1.5)  # (a last snapshot each, once a second)
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=30) == 0

    # b runs (here on this host; the refusal reads the coordinator, so any host's counts).
    refused = undo(daemons, "a", "--coordinator", daemons.url)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert f"pid {b.pid}" in refused.stderr and "stop them first" in refused.stderr
    assert refused.stderr.count("\n") == 1 and files_in_source(daemons) == 0
    # Without the URL, on a fleet's source: one line, exit 2, nothing touched.
    b.send_signal(signal.SIGTERM)
    assert b.wait(timeout=30) == 0
    bare = undo(daemons, "a")
    assert bare.returncode == 2 and "is a fleet's source" in bare.stderr, bare.stderr
    assert "--coordinator URL" in bare.stderr and files_in_source(daemons) == 0

    done = undo(daemons, "a", "--coordinator", daemons.url)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every instance's deliveries (a's and b's: the coordinator's rows), back, bytes intact.
    back = {os.path.basename(p) for p in files_under(daemons.source)}
    assert back == set(made) and files_under(daemons.dest) == {}
    assert {os.path.basename(p): d for p, d in files_under(daemons.source).items()} == made
    assert done.stdout.splitlines()[-2] == "400 undone, 0 skipped", done.stdout
    with psycopg.connect(daemons.url) as conn:
        held = conn.execute("SELECT count(*) FROM reorg_files WHERE state = 'undone'").fetchone()
    assert held == (len(back),)

    # A change of its metadata only (mode, an extended attribute: the ctime moves) is no change
    # of the file: held still, as on one host (undone.holds).
    chmodded, tagged = sorted(files_under(daemons.source))[-2:]
    os.chmod(daemons.source / chmodded, 0o600)
    os.setxattr(daemons.source / tagged, "user.reorg-test", b"1")
    # The fleet again, both instances: whichever lists leaves the undone files alone.
    daemons.start("a"), daemons.start("b")
    more = make_files(daemons.source, 1000, 50)  # and moves what is new
    wait_for(lambda: files_in_source(daemons) == len(back), 60, "the new files moved")
    time.sleep(3)  # several poll intervals (1 s) and settle times (0.2 s)
    assert {os.path.basename(p) for p in files_under(daemons.source)} == back
    # One undone file changed: new work, delivered once.
    changed = sorted(files_under(daemons.source))[0]
    path = daemons.source / changed
    path.write_bytes(path.read_bytes() + b"changed")
    os.utime(path, (OLD, OLD))
    wait_for(lambda: files_in_source(daemons) == len(back) - 1, 60, "the changed file delivered")
    assert daemons.stop_all() == {"a": 0, "b": 0}
    arrived = {os.path.basename(p) for p in files_under(daemons.dest)}
    assert arrived | back == set(made) | set(more) and not arrived & (back - {os.path.basename(changed)})
    assert len(files_under(daemons.dest)) + len(back) - 1 == len(made) + len(more)  # none twice
    # The undo undone (its batch): delivered again, and nothing held for the fleet (no row of a
    # path outside the source); the changed file, delivered meanwhile, is skipped as gone.
    batch = done.stdout.splitlines()[-1].split()[2].rstrip(":")
    again = undo_batch(daemons, "a", batch, "--coordinator", daemons.url)
    assert again.returncode == 1 and f"{len(back) - 1} undone, 1 skipped" in again.stdout, again.stdout
    assert files_under(daemons.source) == {}
    with psycopg.connect(daemons.url) as conn:
        rels = [bytes(r[0]) for r in conn.execute("SELECT rel FROM reorg_files WHERE state = 'undone'")]
    assert len(rels) == len(back) and not [r for r in rels if r.startswith(b"..")], rels[:3]
    # By PATH, from the fleet's rows: a delivered file by its destination path, and one never
    # delivered (skipped, unknown).
    one = sorted(files_under(daemons.dest))[0]
    by_path = cli(
        "undo", "--yes", "--state-dir", str(daemons.state_dir("a")), "-d", str(daemons.dest),
        "--coordinator", daemons.url, str(daemons.dest / one), str(daemons.dest / "2024/01/01/nobody.bin"),
    )  # fmt: skip
    assert by_path.returncode == 1 and "1 undone, 1 skipped" in by_path.stdout, by_path.stdout
    assert list(files_under(daemons.source)) == [f"in{int(one[-10:-4]) % 8}/{os.path.basename(one)}"]


def undo_batch(daemons: Daemons, name: str, batch: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        "undo", "--batch", batch, "--yes", "--state-dir", str(daemons.state_dir(name)),
        "-d", str(daemons.dest), *extra,
    )  # fmt: skip
