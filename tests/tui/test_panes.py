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


def test_a_snapshot_that_changed_nothing_repaints_nothing_and_lays_nothing_out():
    """Handed the same state again (an idle daemon, four times a second), no pane repaints and
    the screen is not laid out again: the UI thread's work, which the hosted engine shares the
    interpreter with, was mostly that. A change repaints the one widget that shows it."""
    import dataclasses

    from textual.widget import Widget

    from reorg_tui.tui.app import ReorgApp
    from reorg_tui.tui.sample import NOW, FrozenHost, snapshot
    from reorg_tui.tui.widgets.timing import TimingPane

    host = FrozenHost("running")
    app = ReorgApp(host, now=NOW)
    refreshed: list[tuple[str, bool]] = []
    real_refresh = Widget.refresh

    def noting(self, *regions, layout=False, **kwargs):
        refreshed.append((f"{type(self).__name__}#{self.id}", layout))
        return real_refresh(self, *regions, layout=layout, **kwargs)

    async def script(pilot: Pilot) -> None:
        await pilot.pause()
        Widget.refresh = noting  # type: ignore[method-assign]
        try:
            for _ in range(3):
                app.refresh_from_engine()
            assert refreshed == [], refreshed
            same = snapshot("running")
            busier = dataclasses.replace(
                same, queues=dataclasses.replace(same.queues, ready=same.queues.ready + 1)
            )
            host.snapshot = lambda: busier  # type: ignore[method-assign]
            app.refresh_from_engine()
        finally:
            Widget.refresh = real_refresh  # type: ignore[method-assign]
        assert refreshed == [("Static#timing-text", False)], refreshed
        assert "ready 121" in str(app.query_one(TimingPane).query_one("#timing-text").render())

    drive(app, script)
