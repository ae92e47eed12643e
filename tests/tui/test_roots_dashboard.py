"""The dashboard when its source is replaced under it: the real app, the real engine, a real mv."""

from __future__ import annotations

from textual.pilot import Pilot

from tests.conftest import make_settings
from tests.tui.test_dashboard import dashboard, drive, engine_started, until


def test_a_replaced_source_ends_the_dashboard_with_exit_code_5_and_one_line(tmp_path, capfd):
    settings = make_settings(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        settings.source.rename(tmp_path / "source.old")
        settings.source.mkdir()
        await until(pilot, lambda: not app.is_running, "the app to exit after draining")

    drive(app, script)
    assert app.return_value == 5  # what `reorg-tui` exits with (tui/run.py)
    err = " ".join(capfd.readouterr().err.split())  # the console wraps it at its width
    assert (
        f"reorg-tui: error: the source {settings.source} was replaced while this instance ran (it is no "
        "longer the folder it locked): stopped; start it again to work on the folder there now"
    ) in err
