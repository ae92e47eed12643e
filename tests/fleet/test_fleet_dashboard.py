"""The dashboard's Fleet view (key 5, with --coordinator), driven by its Pilot: the engine it hosts
is one instance of a fleet beside a real daemon, and the view lists both, the lister marked,
read from the real coordinator by a worker; without a coordinator there is no such view."""

from __future__ import annotations

import os
import socket

import psycopg
from textual.pilot import Pilot
from textual.widgets import Static, TabbedContent

from reorg_tui.engine.engine import Engine
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost
from reorg_tui.tui.screens.instance import InstanceScreen
from reorg_tui.tui.widgets.fleet_view import FleetTable
from reorg_tui.tui.widgets.throughput import ThroughputPane
from tests.conftest import OLD, make_settings, wait_for, write
from tests.fleet.conftest import Daemons
from tests.tui.test_dashboard import drive, engine_started, table_cells, text_of, until


def test_the_fleet_view_lists_every_instance_and_the_lister(daemons: Daemons) -> None:
    other = daemons.start("daemon")
    wait_for(lambda: (daemons.snapshot("daemon") or {}).get("state") == "running", 30, "the daemon")
    settings = make_settings(
        daemons.root,
        source=daemons.source,
        dest=daemons.dest,
        quarantine=daemons.quarantine,
        state_dir=daemons.root / "state-dashboard",
        coordinator=daemons.url,
        recursive=True,
    )
    app = ReorgApp(
        EngineHost(Engine(settings)), refresh_interval=0.1, fleet=(daemons.url, str(settings.source))
    )

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("5")
        assert app.query_one(TabbedContent).active == "fleet"
        table = app.query_one(FleetTable)
        await until(pilot, lambda: table.row_count == 2, "both instances", timeout=20)
        rows = table_cells(table)
        assert {int(r[1]) for r in rows} == {other.pid, os.getpid()}
        assert [r[3] for r in rows].count("lister") == 1
        assert {r[2] for r in rows} == {"running"}
        assert text_of(app, "#fleet-note").startswith("healthy: 2 instance(s) of the fleet")
        await until(pilot, lambda: "200 moved" in text_of(app, "#fleet-note"), "the fleet's totals")
        assert "2 of 2 instance(s) seen running" in text_of(app, "#fleet-note")
        # Attach to the daemon (another process; on another host it would be the same): its
        # panes, from what it writes to the coordinator, live; escape goes back to the fleet.
        table.move_cursor(row=table.get_row_index(f"{socket.gethostname()}\0{other.pid}"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, InstanceScreen), "the instance's screen")
        screen = app.screen
        assert isinstance(screen, InstanceScreen)
        await until(pilot, lambda: screen.shown is not None, "its snapshot shown")
        assert screen.shown is not None and screen.shown.pid == other.pid
        moved = daemons.snapshot("daemon")["totals"]["moved"]  # type: ignore[index]
        head = str(screen.query_one("#instance-head", Static).render())
        assert head.startswith(f"{socket.gethostname()} pid {other.pid}: running"), head
        assert f"{moved:,} moved" in head, (moved, head)
        throughput = screen.query_one(ThroughputPane)
        assert throughput.last is not None and throughput.last.totals.moved == moved
        assert "moved" in str(throughput.query_one("#throughput-text", Static).render())
        # Live: what it writes next is drawn (its snapshot of a later second).
        first = screen.shown.snapshot
        assert first is not None
        await until(
            pilot,
            lambda: (
                screen.shown is not None
                and screen.shown.snapshot is not None
                and screen.shown.snapshot.taken_at > first.taken_at
            ),
            "a later snapshot drawn",
            timeout=10,
        )
        # The daemon gone and forgotten (killed, its row deleted as after 10 min): said, with the
        # fleet's health line; the last panes stay.
        other.kill()
        other.wait()
        with psycopg.connect(daemons.url) as conn:
            conn.execute("DELETE FROM reorg_instances WHERE pid = %s", (other.pid,))
        head_of = lambda: str(screen.query_one("#instance-head", Static).render())  # noqa: E731
        gone = "not listed by the coordinator now (healthy: 1 instance(s) of the fleet)"
        await until(
            pilot, lambda: head_of().endswith(gone), "its row gone (the lister the hosted one)", timeout=20
        )
        assert throughput.last is not None and throughput.last.totals.moved >= moved
        await pilot.press("escape")
        assert not isinstance(app.screen, InstanceScreen)
        assert app.query_one(TabbedContent).active == "fleet"

    for i in range(200):  # moved by the two between them, before the dashboard's look
        write(daemons.source / f"in{i % 4}" / f"2024-03-{1 + i % 28:02d}_f{i:04d}.bin", b"%d" % i, OLD)
    drive(app, script)


def test_without_a_coordinator_there_is_no_fleet_view(tmp_path) -> None:
    app = ReorgApp(EngineHost(Engine(make_settings(tmp_path))), refresh_interval=0.1)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("5")
        assert app.query_one(TabbedContent).active == "overview"
        assert not app.query("#fleet-view")

    drive(app, script)
