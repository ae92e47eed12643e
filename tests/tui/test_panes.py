"""What the panes count, from the real engine hosted by the real dashboard."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Log

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
