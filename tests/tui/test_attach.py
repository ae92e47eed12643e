"""The dashboard attached to a real headless instance in another process."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from textual.pilot import Pilot

from reorg_tui.config import Settings
from reorg_tui.engine.lock import source_is_locked
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import AttachedHost
from reorg_tui.tui.screens.details import DetailsScreen
from reorg_tui.tui.widgets.activity import ActivityLog
from reorg_tui.tui.widgets.quarantine_table import QuarantineTable
from tests.conftest import OLD, in_a_terminal, make_settings, write
from tests.tui.test_activity import visible
from tests.tui.test_dashboard import drive, table_cells, text_of, until


def test_attached_dashboard_shows_steers_and_leaves_the_daemon_running(daemon_factory):
    d = daemon_factory("--on-conflict", "quarantine")
    for i in range(5):
        write(d.src / f"2024-05-0{i + 1}_ok{i}.txt", f"ok {i}", OLD)
    write(d.dst / "2024/06/01/2024-06-01_taken.txt", b"already there")
    write(d.src / "2024-06-01_taken.txt", b"the newcomer", OLD)
    write(d.src / "2024-06-02_doomed.txt", b"doomed", OLD)
    write(d.dst / "2024/06/02/2024-06-02_doomed.txt", b"also there")
    assert source_is_locked(d.src)
    settings = Settings(source=d.src, dest=d.dst, quarantine=d.q, state_dir=d.state)
    app = ReorgApp(AttachedHost(settings), refresh_interval=0.1, attached=True)

    async def script(pilot: Pilot) -> None:
        await until(
            pilot, lambda: "moved 5 files" in text_of(app, "#throughput-text"), "the daemon's numbers"
        )
        assert "[attached]" in text_of(app, "#status")
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 2, "the daemon's quarantine")

        await pilot.press("p")
        await until(pilot, lambda: "paused by operator" in text_of(app, "#status"), "the daemon to pause")
        await pilot.press("p")
        await until(pilot, lambda: "● running" in text_of(app, "#status"), "the daemon to resume")

        (d.dst / "2024/06/01/2024-06-01_taken.txt").unlink()  # the operator clears the way...
        await pilot.press("2")
        names = [row[1] for row in table_cells(table)]
        table.move_cursor(row=names.index("2024-06-01_taken.txt"))
        await pilot.press("r")  # ...and releases: the daemon moves it
        await until(
            pilot, (d.dst / "2024/06/01/2024-06-01_taken.txt").exists, "the daemon to move the release"
        )
        assert (d.dst / "2024/06/01/2024-06-01_taken.txt").read_bytes() == b"the newcomer"
        await until(pilot, lambda: table.row_count == 1, "the released row to go")
        await pilot.press("d", "y")
        await until(pilot, lambda: not list(d.q.glob("*/2024-06-02_doomed.txt")), "the delete")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the dashboard to quit")

    drive(app, script)
    assert d.proc.poll() is None, "quitting the dashboard stopped the daemon"
    write(d.src / "2024-07-01_after.txt", b"still served", OLD)
    from tests.conftest import wait_for

    wait_for((d.dst / "2024/07/01/2024-07-01_after.txt").exists, what="the daemon to keep working")
    code, _ = d.stop()
    assert code == 0


def test_events_a_batch_hands_over_late_still_reach_the_attached_pane(tmp_path):
    """A worker hands its batch's events over when the batch ends, so the published list is not
    in time order: an event older than one already shown is still new."""
    import os

    from reorg_tui.engine import events as ev
    from reorg_tui.engine.publish import Publisher
    from reorg_tui.tui.sample import NOW, snapshot

    settings = make_settings(tmp_path)
    publisher = Publisher(settings.state_dir)
    host = AttachedHost(settings)
    early = ev.Moved("/src/2024-01-01_a.txt", "/dst/2024/01/01/2024-01-01_a.txt", 1, 0.1, "moved", at=NOW)
    late = ev.Moved("/src/2024-01-01_b.txt", "/dst/2024/01/01/2024-01-01_b.txt", 1, 0.1, "moved", at=NOW + 1)
    publisher.on_events([late])
    publisher.publish(snapshot())
    host.poll()
    assert host.drain_events() == [late]
    publisher.on_events([early])  # from a batch that started first and ended later
    publisher.publish(snapshot())
    host.poll()
    assert host.drain_events() == [early]
    host.poll()
    assert host.drain_events() == [], "an event already shown came again"
    assert os.getpid() == host.pid


def test_after_its_daemon_stops_the_attached_dashboard_says_since_when_and_attaches_again(daemon_factory):
    d = daemon_factory()
    settings = Settings(source=d.src, dest=d.dst, quarantine=d.q, state_dir=d.state)
    app = ReorgApp(AttachedHost(settings), refresh_interval=0.1, attached=True)

    async def script(pilot: Pilot) -> None:
        await until(pilot, lambda: "● running" in text_of(app, "#status"), "the daemon's state")
        log = app.query_one(ActivityLog)
        for i in range(50):  # moves the daemon makes while the dashboard watches: the newest shows
            write(d.src / f"2024-08-{1 + i % 28:02d}_late{i:02d}.txt", f"late {i}", OLD)
        await until(pilot, lambda: "moved 50 files" in text_of(app, "#throughput-text"), "the 50 moves")
        await until(pilot, lambda: any("_late" in line for line in visible(log)[-3:]), "the newest moves")

        code, _ = d.stop()
        assert code == 0
        await until(pilot, lambda: "not running since" in text_of(app, "#status"), "the stop to show")
        status = text_of(app, "#status")
        assert "[attached]" in status
        banner = text_of(app, "#banner")
        assert "not running since" in banner and "re-attaches by itself" in banner
        await pilot.pause(1.5)
        assert text_of(app, "#status") == status, "the uptime kept counting after the daemon stopped"

        d.start()  # as supervisord would: the same folders, a new process
        await until(pilot, lambda: "● running" in text_of(app, "#status"), "the dashboard to re-attach")
        assert not app.query_one("#banner").has_class("-visible")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the dashboard to quit")

    drive(app, script)


def test_the_dashboard_finds_a_daemon_with_its_own_state_folder_from_the_source_alone(daemon_factory):
    """`reorg-tui -s SRC -d DEST` (no --state-dir) on a source whose daemon keeps its state
    elsewhere attaches to that daemon: its published state and its control socket, not an
    empty default folder that would show 'attaching' and zeros for ever."""
    from reorg_tui.config import load
    from reorg_tui.tui.run import dashboard

    d = daemon_factory()  # started with --state-dir, away from the source's default state folder
    settings = load({"source": str(d.src), "dest": str(d.dst), "quarantine": str(d.q)}, env={})
    assert settings.state_dir != d.state
    app, servers = dashboard(settings)
    assert isinstance(app.host, AttachedHost) and servers == []
    assert app.host.settings.state_dir == d.state
    app.host.poll()
    assert app.host.snapshot().state == "running"


def test_a_read_only_viewer_sees_everything_live_and_can_change_nothing(daemon_factory, tmp_path):
    """--read-only: the panes and the quarantine are live; pause, release, delete and the marks
    are not in the footer nor the palette, their keys do nothing, and the daemon's control
    socket refuses them to a read-only client whatever it sends."""
    from textual.command import CommandPalette
    from textual.widgets._footer import FooterKey

    from reorg_tui.config import ConfigError, load
    from reorg_tui.engine.control import ControlError, request
    from reorg_tui.tui.run import dashboard

    d = daemon_factory()
    write(d.src / "2024-02-30_bad.txt", b"no such day", OLD)
    for i in range(3):
        write(d.src / f"2024-05-0{i + 1}_ok{i}.txt", f"ok {i}", OLD)
    settings = load({"source": str(d.src), "dest": str(d.dst), "quarantine": str(d.q)}, env={})
    app, _ = dashboard(settings, read_only=True)

    def footer_keys() -> set[str]:
        return {k.description for k in app.screen.query(FooterKey)}

    async def script(pilot: Pilot) -> None:
        await until(
            pilot, lambda: "moved 3 files" in text_of(app, "#throughput-text"), "the daemon's numbers"
        )
        assert "[read-only]" in text_of(app, "#status")
        assert "Pause/resume" not in footer_keys() and "Quit" in footer_keys()
        await pilot.press("p")
        await pilot.pause(0.5)
        assert "running" in text_of(app, "#status") and "paused" not in text_of(app, "#status")
        await pilot.press("2")
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 1, "the daemon's quarantine")
        keys = footer_keys()
        assert not keys & {"Release", "Delete", "Mark"}, keys
        await pilot.press("space", "r", "d", "y")
        await pilot.press("enter")  # the details: readable, with no release nor delete
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details")
        assert not footer_keys() & {"Release", "Delete"}
        await pilot.press("r", "d", "escape")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert not titles & {"Pause or resume", "Release selected", "Delete selected", "Mark all"}
        assert "Show quarantine" in titles
        await pilot.press("escape")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the dashboard to quit")

    drive(app, script)
    assert len(list(d.q.glob("*/2024-02-30_bad.txt"))) == 1, "a read-only viewer changed the quarantine"
    assert d.proc.poll() is None
    for op, args in (("pause", {}), ("release", {"id": "x"}), ("delete", {"id": "x"})):
        try:
            request(d.state, op, read_only=True, **args)
        except ControlError as exc:
            assert "read-only" in str(exc)
        else:
            raise AssertionError(f"{op} was served to a read-only client")
    assert request(d.state, "ping", read_only=True) == "running"
    alone = make_settings(tmp_path)  # no daemon there: nothing to view
    try:
        dashboard(alone, read_only=True)
    except ConfigError as exc:
        assert "--read-only attaches to the daemon" in str(exc)
    else:
        raise AssertionError("--read-only started an engine of its own")


def test_a_read_only_viewer_in_a_real_terminal_writes_nothing_in_the_daemons_state_folder(daemon_factory):
    """``reorg-tui --read-only`` in a pseudo-terminal, as an operator runs it beside a daemon: it
    shows the daemon, quits on q with exit 0, and leaves the daemon's state folder as it found it
    but for what the daemon writes itself (no dashboard.log: a viewer keeps its log nowhere)."""
    import select

    d = daemon_factory()
    before = set(os.listdir(d.state))
    pid, fd = in_a_terminal("--read-only", *d.args)
    output = bytearray()
    status = None
    try:
        deadline = time.monotonic() + 60
        while b"read-only" not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    output += os.read(fd, 65536)
        assert b"read-only" in output, bytes(output[-500:])
        os.write(fd, b"q")
        while status is None and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    output += os.read(fd, 65536)
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
        assert status is not None and os.waitstatus_to_exitcode(status) == 0, bytes(output[-500:])
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    made = set(os.listdir(d.state)) - before
    assert not {name for name in made if not name.startswith("snapshot")}, made
    assert not (d.state / "dashboard.log").exists()
