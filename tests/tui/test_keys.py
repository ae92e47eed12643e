"""Keys that save an operator time, on the sample state: marks in bulk, the help, the first and
last row of a table, a cursor that stays on its row, the palette."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Static

from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.sample import NOW, RECORDS, FrozenHost
from reorg_tui.tui.screens.help import HelpScreen
from reorg_tui.tui.widgets.quarantine_table import QuarantineTable
from reorg_tui.tui.widgets.retry_table import RetryTable
from tests.tui.test_dashboard import (
    dashboard,
    drive,
    table_cells,
    three_collisions,
    three_quarantined,
    until,
)


def sample_app(state: str = "running") -> ReorgApp:
    return ReorgApp(FrozenHost(state), now=NOW)


def marks(table: QuarantineTable) -> list[str]:
    """The file names whose row shows a mark, sorted."""
    return sorted(row[1] for row in table_cells(table) if row[0] == "●")


def test_a_marks_every_row_shown_u_clears_and_the_palette_marks_all():
    app = sample_app()

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await pilot.press("2", "a")
        assert marks(table) == sorted(r.name for r in RECORDS)
        await pilot.press("u")
        assert marks(table) == []
        await pilot.press("slash", *"backup", "enter", "a")
        assert marks(table) == ["2026-03-01_backup.tar"], "a with a filter marks what it shows"
        await pilot.press("u")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Mark all"].callback()  # clears the filter: what is marked is in view
        await pilot.pause()
        assert marks(table) == sorted(r.name for r in RECORDS)
        commands["Clear marks"].callback()
        await pilot.press("slash", *"2026-0", "enter")
        commands["Mark the filtered rows"].callback()
        await pilot.pause()
        assert marks(table) == sorted([RECORDS[1].name, RECORDS[2].name])

    drive(app, script)


def test_home_end_g_and_shift_g_go_to_the_first_and_last_row():
    app = sample_app()

    async def script(pilot: Pilot) -> None:
        retry = app.query_one(RetryTable)
        retry.focus()
        await pilot.press("end")
        assert retry.cursor_row == 1 and retry.scroll_x == 0
        await pilot.press("home")
        assert retry.cursor_row == 0
        table = app.query_one(QuarantineTable)
        await pilot.press("2", "G")
        assert table.cursor_row == len(RECORDS) - 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == len(RECORDS) - 1

    drive(app, script)


def test_the_cursor_stays_on_its_file_when_a_filter_hides_the_rows_above_it():
    app = sample_app()

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await pilot.press("2", "down")
        assert table.current_key == RECORDS[1].id
        await pilot.press("slash", *"2026-0", "enter")  # hides the first row
        assert [row[1] for row in table_cells(table)] == [RECORDS[1].name, RECORDS[2].name]
        assert table.current_key == RECORDS[1].id
        await pilot.press("escape")  # the first row comes back, at the end
        await pilot.pause()
        assert table.current_key == RECORDS[1].id

    drive(app, script)


def test_after_a_release_the_cursor_stays_on_the_file_it_was_on(tmp_path):
    settings = three_collisions(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        table = await three_quarantined(pilot, app)
        first, second, _ = [row[1] for row in table_cells(table)]
        await pilot.press("2", "space", "down")  # mark the first file, the cursor on the second
        assert table_cells(table)[table.cursor_row][1] == second
        await pilot.press("r")  # releases the marked one: the rows above the cursor change
        await until(pilot, lambda: table.row_count == 2, "the released row to go")
        assert table_cells(table)[table.cursor_row][1] == second
        assert (settings.source / first).exists()

    drive(app, script)


def test_the_palette_has_each_command_once():
    app = sample_app()

    async def script(pilot: Pilot) -> None:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert len(titles) == len(set(titles)), titles
        assert [t for t in titles if "Quit" in t] == ["Quit"]
        assert [t for t in titles if t in ("Help", "Keys")] == ["Help"]

    drive(app, script)


def test_help_explains_the_queue_words_and_attempts_and_escape_closes_it():
    app = sample_app()

    async def script(pilot: Pilot) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = " ".join(str(s.render()) for s in app.screen.query(Static))
        for words in ("settling", "ready", "in flight", "retry", "An attempt is", "waiting for room"):
            assert words in shown, words
        assert "escape closes" in str(app.screen.query_one("#help-box").border_subtitle)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    drive(app, script)


def test_at_80x24_the_footer_keeps_help_and_the_alert_line_wraps():
    from textual.widgets._footer import FooterKey

    app = ReorgApp(FrozenHost("alert"), now=NOW)

    async def script(pilot: Pilot) -> None:
        for keys in ((), ("2",)):
            await pilot.press(*keys)
            await pilot.pause()
            footer = list(app.screen.query(FooterKey))
            edge = min([80] + [k.region.x for k in footer if k.key == "ctrl+p"])  # docked right
            shown = [k.description for k in footer if k.region.width and k.region.right <= edge]
            assert "Help" in shown and "Quit" in shown, (keys, shown)
        banner = app.query_one("#banner")
        assert banner.region.height >= 2, "the alert line was cut instead of wrapped"

    drive(app, script, size=(80, 24))
