"""The dashboard's Fleet view (key 5, with --coordinator), driven by its Pilot: the engine it hosts
is one instance of a fleet beside a real daemon, and the view lists both, the lister marked,
read from the real coordinator by a worker; without a coordinator there is no such view."""

from __future__ import annotations

import os

from textual.pilot import Pilot
from textual.widgets import TabbedContent

from reorg_tui.engine.engine import Engine
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost
from reorg_tui.tui.widgets.fleet_view import FleetTable
from tests.conftest import make_settings, wait_for
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

    drive(app, script)


def test_without_a_coordinator_there_is_no_fleet_view(tmp_path) -> None:
    app = ReorgApp(EngineHost(Engine(make_settings(tmp_path))), refresh_interval=0.1)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("5")
        assert app.query_one(TabbedContent).active == "overview"
        assert not app.query("#fleet-view")

    drive(app, script)
