"""What the panes count, from the real engine hosted by the real dashboard."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Log

from reorg_tui.tui.widgets.error_rate import ErrorRatePane
from tests.conftest import OLD, make_settings, write
from tests.tui.test_dashboard import dashboard, drive, engine_started, text_of, until


def test_a_file_given_a_collision_name_shows_as_renamed_in_throughput_and_activity(tmp_path):
    settings = make_settings(tmp_path)  # --on-conflict rename, the default
    write(settings.dest / "2025/03/14/2025-03-14_collide.txt", b"already here")
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        write(settings.source / "2025-03-14_collide.txt", b"another", OLD)
        write(settings.source / "2025-03-15_free.txt", b"free", OLD)
        await until(pilot, lambda: "moved 2 " in text_of(app, "#throughput-text"), "both moves")
        assert "moved 2 (1 renamed) · " in text_of(app, "#throughput-text")

        def renamed_lines() -> list[str]:
            return [line for line in app.query_one("#activity", Log).lines if "collide (1).txt" in line]

        await until(pilot, renamed_lines, "its activity line")
        [line] = renamed_lines()
        assert line.split()[1] == "renamed"

    drive(app, script)


@pytest.mark.parametrize(("threshold", "red"), [(0.2, True), (0.5, False)])
def test_the_error_pane_turns_red_at_the_operators_alert_error_rate(tmp_path, threshold, red):
    """3 of 10 files have impossible dates (quarantined at once): an error rate of 30%. Red at
    --alert-error-rate 0.2, and not at 0.5 (it used to be red at a built-in 5% whatever the
    operator said). The quarantine-count alert, evaluated in the same round as the error rate's,
    shows that the rules have been applied to this rate."""
    settings = make_settings(tmp_path, alert_error_rate=threshold, alert_quarantine_count=1)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        for i in range(7):
            write(settings.source / f"2024-05-0{i + 1}_ok.txt", b"ok", OLD)
        for name in ("2024-02-30_bad.txt", "2024-02-31_bad.txt", "2024-04-31_bad.txt"):
            write(settings.source / name, b"no such day", OLD)
        await until(pilot, lambda: "error rate 30.0%" in text_of(app, "#errors-text"), "a 30% error rate")
        await until(pilot, lambda: "quarantine" in text_of(app, "#banner"), "the alerts to be evaluated")
        await pilot.pause(0.2)  # a refresh after them (refresh_interval 0.1)
        pane = app.query_one(ErrorRatePane)
        assert pane.has_class("-alert") is red
        assert ("error rate" in text_of(app, "#banner")) is red  # the pane and the banner agree

    drive(app, script)
