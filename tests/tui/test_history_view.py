"""The History view (key 3) on real ledgers, driven by the Pilot: search as you type, enter shows
a transfer whole; the ledger is read in a worker, from the hosted engine or an attached daemon's
state folder."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input, Static

from reorg_tui.engine.ledger import Query
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import AttachedHost
from reorg_tui.tui.screens.details import InfoScreen
from reorg_tui.tui.widgets.history_table import HistoryTable
from tests.conftest import OLD, make_settings, run_once, write
from tests.tui.test_dashboard import dashboard, drive, engine_started, table_cells, text_of, until

NAMES = ("2024-11-01_invoice-17.pdf", "2024-11-02_minutes.odt", "2024-12-24_invoice-18.pdf")


def _delivered(tmp_path):
    settings = make_settings(tmp_path)
    for name in NAMES:
        write(settings.source / name, name, OLD)
    run_once(settings)
    return settings


def test_typing_filters_the_rows_and_enter_shows_the_whole_target_path(tmp_path):
    settings = _delivered(tmp_path)
    app = dashboard(settings)  # hosting the engine again, on the same folders and ledger

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        table = app.query_one(HistoryTable)
        await pilot.press("3")
        assert app.focused is app.query_one("#history-search", Input), "3 puts the cursor in the search box"
        await until(pilot, lambda: table.row_count == 3, "every transfer")
        assert [row[1] for row in table_cells(table)] == ["delivered"] * 3
        assert table_cells(table)[0][2:] == [NAMES[2], f"2024/12/24/{NAMES[2]}"], "newest first, relative"
        in_order = [row[2] for row in table_cells(table)]
        await pilot.press(*"invoice")
        await until(pilot, lambda: table.row_count == 2, "the rows that match")
        assert sorted(row[2] for row in table_cells(table)) == [NAMES[0], NAMES[2]]
        await pilot.press(*"-17")
        await until(pilot, lambda: table.row_count == 1, "the one row left")
        await pilot.press("enter", "enter")  # to the rows, then the row in full
        assert isinstance(app.screen, InfoScreen)
        shown = str(app.screen.query_one("#details-text", Static).render())
        assert str(settings.dest / "2024/11/01" / NAMES[0]) in shown
        assert str(settings.source / NAMES[0]) in shown and "1 attempt" in shown
        await pilot.press("escape", "escape")  # closes it; then clears the search
        await until(pilot, lambda: table.row_count == 3, "every row again")
        assert [row[2] for row in table_cells(table)] == in_order, "the ledger's order again, newest first"
        await pilot.press("slash", *"2024-11-*")  # a glob, as typed
        await until(pilot, lambda: table.row_count == 2, "the glob's rows")

    drive(app, script)


def test_newly_moved_files_appear_while_the_view_is_shown(tmp_path):
    settings = _delivered(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        table = app.query_one(HistoryTable)
        await pilot.press("3")
        await until(pilot, lambda: table.row_count == 3, "the earlier transfers")
        write(settings.source / "2025-01-01_fresh.txt", b"fresh")
        await until(pilot, lambda: table.row_count == 4, "the new move to appear", timeout=20)
        assert table_cells(table)[0][2] == "2025-01-01_fresh.txt", "at the top: newest first"

    drive(app, script)


def test_attached_it_reads_the_daemons_ledger_and_says_when_there_is_none(tmp_path):
    settings = _delivered(tmp_path)
    rows = AttachedHost(settings).history(Query(name="*invoice*"))
    assert sorted(r.target_path for r in rows) == sorted(
        str(settings.dest / n[:4] / n[5:7] / n[8:10] / n) for n in (NAMES[0], NAMES[2])
    )
    empty = make_settings(tmp_path / "other")
    app = ReorgApp(AttachedHost(empty), attached=True)

    async def script(pilot: Pilot) -> None:
        await pilot.press("3")
        await until(pilot, lambda: "No history yet" in text_of(app, "#history-note"), "the note")
        assert app.query_one(HistoryTable).row_count == 0

    drive(app, script)
    assert not (empty.state_dir / "ledger.sqlite3").exists()
