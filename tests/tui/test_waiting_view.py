"""The Waiting view (key 4), driven by its Pilot over a real engine: the files waiting longest,
with why, refreshed live, filtered as you type, one opened whole."""

from __future__ import annotations

import threading
import time

from textual.pilot import Pilot
from textual.widgets import Input

from reorg_tui.tui.screens.details import InfoScreen
from reorg_tui.tui.widgets.waiting_view import WaitingTable
from tests.conftest import make_settings, write
from tests.tui.test_dashboard import dashboard, drive, engine_started, table_cells, text_of, until


def test_the_waiting_view_lists_the_files_that_wait_and_why_and_filters_them(tmp_path):
    settings = make_settings(tmp_path, settle=3600.0)  # written now: each settles for an hour
    for name in ("2024-09-01_report.csv", "2024-09-02_upload.bin", "2024-09-03_other.dat"):
        write(settings.source / name, b"x")
    stop = threading.Event()
    busy = settings.source / "2024-09-04_growing.log"
    write(busy, b"x")

    def keep_writing() -> None:
        while not stop.is_set():
            with open(busy, "ab") as f:
                f.write(b"x")
            time.sleep(0.05)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("4")
        table = app.query_one(WaitingTable)
        await until(pilot, lambda: table.row_count == 4, "the four waiting files")
        rows = table_cells(table)
        assert {r[0] for r in rows} == {
            "2024-09-01_report.csv", "2024-09-02_upload.bin", "2024-09-03_other.dat", "2024-09-04_growing.log"
        }  # fmt: skip
        assert {r[1] for r in rows} == {"settling"}
        assert "waiting longest" in text_of(app, "#waiting-note")
        await pilot.pause(1.2)  # refreshed live: the ages grow
        assert any(r[2] != "0 s" for r in table_cells(table))
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"upload")
        await until(pilot, lambda: table.row_count == 1, "the filter to narrow the rows")
        assert table_cells(table)[0][0] == "2024-09-02_upload.bin"
        assert "1 match the filter" in text_of(app, "#waiting-note")
        await pilot.press("enter")  # to the rows
        await pilot.press("enter")  # the row, whole
        await until(pilot, lambda: isinstance(app.screen, InfoScreen), "the file's details")
        assert "2024-09-02_upload.bin" in str(app.screen.text) and "settling" in str(app.screen.text)
        await pilot.press("escape")
        await pilot.press("escape")  # the filter cleared
        await until(pilot, lambda: table.row_count == 4, "every row again")

    try:
        drive(app, script)
    finally:
        stop.set()
        writer.join()
