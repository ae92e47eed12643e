"""The real dashboard hosting the real engine over real folders, driven by Textual's Pilot."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from textual.pilot import Pilot
from textual.widgets import DataTable, Log, Static

from reorg_tui.engine.engine import Engine
from reorg_tui.names import safe
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost
from reorg_tui.tui.screens.confirm import ConfirmScreen
from reorg_tui.tui.screens.details import DetailsScreen
from reorg_tui.tui.widgets.quarantine_table import QuarantineTable
from reorg_tui.tui.widgets.retry_table import RetryTable
from tests.conftest import OLD, make_settings, unmark, write


def drive(
    app: ReorgApp, script: Callable[[Pilot], Awaitable[None]], size: tuple[int, int] = (120, 40)
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(main())


async def until(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def engine_started(pilot: Pilot, app: ReorgApp) -> None:
    await until(pilot, lambda: "running" in text_of(app, "#status"), "the engine to start")


def text_of(app: ReorgApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def table_cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def dashboard(settings) -> ReorgApp:
    return ReorgApp(EngineHost(Engine(settings)), refresh_interval=0.1)


class CountingApp(ReorgApp):
    """The dashboard, counting its refreshes so a test can see the panes keep up."""

    refreshes = 0

    def refresh_from_engine(self) -> None:
        super().refresh_from_engine()
        self.refreshes += 1


def test_dropped_files_show_as_moved_in_the_panes(tmp_path):
    settings = make_settings(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        for i in range(3):
            write(settings.source / f"2025-01-0{i + 1}_drop{i}.txt", f"drop {i}")
        await until(pilot, lambda: "moved 3 files" in text_of(app, "#throughput-text"), "the pane to count 3")
        log = "\n".join(app.query_one("#activity", Log).lines)
        assert log.count("moved ") == 3 and "2025-01-02_drop1.txt" in log
        assert (settings.dest / "2025/01/03/2025-01-03_drop2.txt").read_text() == "drop 2"

    drive(app, script)


def test_a_failing_file_goes_through_retries_to_quarantine_and_r_releases_it(tmp_path, immutable):
    settings = make_settings(tmp_path, max_retries=2, retry_base_delay=0.8, retry_max_delay=1.0)
    folder = settings.dest / "2025/02/02"
    folder.mkdir(parents=True)
    immutable(folder)  # chattr +i: EPERM even for root, a transient error
    write(settings.source / "2025-02-02_stuck.txt", b"stuck", OLD)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        retry = app.query_one(RetryTable)
        await until(pilot, lambda: retry.row_count == 1, "the retry queue row")
        row = table_cells(retry)[0]
        assert row[0] == "2025-02-02_stuck.txt" and "EPERM" in row[3]
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 1, "the quarantine row")
        # The quarantine can be counted (by a rescan) a moment before the retry entry is dropped.
        await until(pilot, lambda: retry.row_count == 0, "the retry row to leave")
        unmark(folder)
        await pilot.press("2")
        assert app.query_one("#tabs").active == "quarantine"
        await pilot.press("r")
        await until(pilot, (folder / "2025-02-02_stuck.txt").exists, "the released file to move")
        await until(pilot, lambda: table.row_count == 0, "the row to leave the table")
        assert (folder / "2025-02-02_stuck.txt").read_bytes() == b"stuck"

    drive(app, script)


def test_d_asks_then_deletes_from_disk_and_enter_shows_details(tmp_path):
    settings = make_settings(tmp_path)
    write(settings.source / "2025-02-30_bad.txt", b"bad", OLD)
    write(settings.source / "2025-02-31_worse.txt", b"worse", OLD)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 2, "two quarantined files")
        await pilot.press("2")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details")
        details = str(app.screen.query_one("#details-text", Static).render())
        assert "original" in details and str(settings.source) in details
        assert "is not a real date" in details and "error history" in details
        # The rows leave error histories out (50,000 of them would be decoded for nothing): the
        # details read the whole record, its history with its times.
        shown = app.screen.record
        assert not any(r.errors for r in app.host.quarantine_list())
        assert shown.errors and all(error in details for error in shown.errors)
        await pilot.press("escape")
        await pilot.press("slash")
        await pilot.press(*"worse")
        await pilot.press("enter")
        assert [row[1] for row in table_cells(table)] == ["2025-02-31_worse.txt"]
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # nothing happens without a yes
        assert len(list(settings.quarantine.glob("*/2025-02-31_worse.txt"))) == 1
        await pilot.press("d", "y")
        await until(pilot, lambda: not list(settings.quarantine.glob("*/2025-02-31_worse.txt")), "the delete")
        await pilot.press("escape")  # clear the filter: the other file is still there
        await until(pilot, lambda: table.row_count == 1, "the table to show what is left")
        assert table_cells(table)[0][1] == "2025-02-30_bad.txt"

    drive(app, script)


def test_p_pauses_so_nothing_moves_and_resumes(tmp_path):
    settings = make_settings(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("p")
        await until(pilot, lambda: "paused by operator" in text_of(app, "#status"), "the paused state")
        assert "Press p to resume" in str(app.query_one("#banner", Static).render())
        write(settings.source / "2025-03-03_wait.txt", b"w", OLD)
        await pilot.pause(settings.poll_interval + settings.settle + 0.5)
        assert (settings.source / "2025-03-03_wait.txt").exists()
        await pilot.press("p")
        await until(pilot, (settings.dest / "2025/03/03/2025-03-03_wait.txt").exists, "the move after resume")

    drive(app, script)


def test_hostile_names_are_shown_literally_and_run_no_action(tmp_path):
    settings = make_settings(tmp_path)
    name = "2025-02-30_[bold]x[@click=app.quit] [link=http:x]\x1b[31mred\nline\u202etxt." + os.fsdecode(
        b"\xff"
    )
    write(settings.source / name, b"hostile", OLD)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 1, "the quarantined file")
        await pilot.press("2")
        cell = table.get_row_at(0)[1]
        assert str(cell) == safe(name)
        assert "[bold]x[@click=app.quit] [link=http:x]\\x1b[31mred\\x0aline\\u202etxt.\\xff" in str(cell)
        await pilot.click(QuarantineTable, offset=(5, 1))
        await pilot.pause(0.2)
        assert app.is_running, "a name's [@click=...] must not run an action"
        log = "\n".join(app.query_one("#activity", Log).lines)
        assert "\x1b" not in log and "[@click=app.quit]" in log

    drive(app, script)
    assert list(settings.quarantine.glob("*/*"))[0].name == name  # delivered with its exact name


def test_q_drains_then_exits_and_releases_the_source(tmp_path):
    settings = make_settings(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to exit after draining")

    drive(app, script)
    assert app.return_code == 0
    engine = Engine(settings)  # the lock was let go: a new instance may start
    engine.instance.lock.acquire()
    engine.instance.lock.release()


def test_narrow_terminal_still_shows_every_pane(tmp_path):
    settings = make_settings(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await pilot.pause(0.3)
        for selector in (
            "#throughput-text",
            "#errors-text",
            "#disk-text",
            "#timing-text",
            "#retry",
            "#activity",
        ):
            widget = app.query_one(selector)
            assert widget.region.width > 0 and widget.region.height > 0, selector
            assert widget.region.bottom <= 24 and widget.region.right <= 80, selector

    drive(app, script, size=(80, 24))


def test_demo_sandbox_brings_every_pane_to_life(tmp_path):
    from reorg_tui.demo import Feeder, make_sandbox

    settings = make_sandbox(tmp_path / "demo")
    feeder = Feeder(settings)
    feeder.write(150)
    feeder.set_flaky(True)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        try:
            await until(
                pilot, lambda: app.query_one(RetryTable).row_count > 0, "retries from the flaky folder"
            )
            await until(
                pilot, lambda: app.query_one(QuarantineTable).row_count > 0, "quarantined troublemakers"
            )
            await until(pilot, lambda: "moved 0 files" not in text_of(app, "#throughput-text"), "moves")
            await until(pilot, lambda: "failed 0 " not in text_of(app, "#errors-text"), "failed attempts")
        finally:
            feeder.set_flaky(False)

    drive(app, script)


def test_a_quarantine_list_that_arrives_after_its_table_is_gone_is_dropped(tmp_path):
    """The list loads in a worker thread; quitting meanwhile removes the table before the list
    arrives (CI once failed on exit this way). Its arrival must not crash the app."""
    settings = make_settings(tmp_path)
    write(settings.source / "2024-02-30_bad.txt", b"x", OLD)  # quarantined: not a real date
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await until(pilot, lambda: app.query_one(QuarantineTable).row_count == 1, "the quarantined file")
        await app.query_one(QuarantineTable).remove()  # as a shutdown does
        await app.load_quarantine().wait()  # the real worker: lists the quarantine, posts the list
        await pilot.pause(0.2)
        assert app.is_running and not app.query(QuarantineTable)

    drive(app, script)


def test_panes_keep_refreshing_and_keys_answer_under_a_flood(tmp_path):
    import threading

    settings = make_settings(tmp_path, settle=0.0, workers=2)
    app = CountingApp(EngineHost(Engine(settings)), refresh_interval=0.1)
    stop = threading.Event()

    def flood() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(200):
                (settings.source / f"2025-05-{1 + i % 28:02d}_flood{i}").write_bytes(b"x")
                i += 1
            time.sleep(0.05)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        feeder = threading.Thread(target=flood, daemon=True)
        feeder.start()
        try:
            await until(pilot, lambda: app.host.snapshot().totals.moved > 2000, "the flood to be moving")
            before = app.refreshes
            await pilot.press("p")
            await until(pilot, lambda: "paused by operator" in text_of(app, "#status"), "p under load")
            await pilot.press("p")
            await until(pilot, lambda: "running" in text_of(app, "#status"), "p again under load")
            await pilot.pause(1.0)
            assert app.refreshes - before >= 3, "the panes stopped refreshing under load"
        finally:
            stop.set()
            feeder.join()

    drive(app, script)


def three_collisions(tmp_path):
    """Settings where three files meet a taken destination and go to the quarantine."""
    settings = make_settings(tmp_path, on_conflict="quarantine")
    for i in range(3):
        write(settings.dest / f"2025/06/0{i + 1}/2025-06-0{i + 1}_dup.txt", b"already there")
        write(settings.source / f"2025-06-0{i + 1}_dup.txt", f"new {i}", OLD)
    return settings


async def three_quarantined(pilot: Pilot, app: ReorgApp) -> QuarantineTable:
    """The three collisions listed; the engine paused, so that released files stay in the source."""
    table = app.query_one(QuarantineTable)
    await until(pilot, lambda: table.row_count == 3, "three collisions in quarantine")
    app.host.engine.pause()  # type: ignore[attr-defined]
    return table


def test_marked_files_are_released_together(tmp_path):
    settings = three_collisions(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        table = await three_quarantined(pilot, app)
        await pilot.press("2", "space", "down", "space")
        assert len(table.marked) == 2
        assert [row[0] for row in table_cells(table)].count("●") == 2
        await pilot.press("r")
        await until(pilot, lambda: table.row_count == 1, "two rows to leave")
        back = sorted(p.name for p in settings.source.iterdir())
        assert len(back) == 2 and all(name.endswith("_dup.txt") for name in back)

    drive(app, script)


def test_help_palette_and_a_second_q_that_forces(tmp_path):
    settings = make_settings(tmp_path)
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        await engine_started(pilot, app)
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Pause or resume", "Show quarantine", "Release selected", "Delete selected"):
            assert wanted in titles
        app.host.engine.pause()
        app.stop_event.set()  # as a first q would; the engine is still draining...
        app.quitting = True
        await pilot.press("q")  # ...and the second q quits at once
        await until(pilot, lambda: not app.is_running, "the forced quit")

    drive(app, script)


def test_a_wide_terminal_puts_the_four_panes_in_one_row(tmp_path):
    app = dashboard(make_settings(tmp_path))

    async def script(pilot: Pilot) -> None:
        await pilot.pause(0.3)
        tops = {
            app.query_one(s).region.y
            for s in ("#throughput-text", "#errors-text", "#disk-text", "#timing-text")
        }
        assert len(tops) == 1
        assert app.query_one("#activity").region.height > 30

    drive(app, script, size=(200, 60))


def test_an_active_alert_shows_as_a_banner_and_a_red_pane():
    from reorg_tui.tui.sample import NOW, FrozenHost

    app = ReorgApp(FrozenHost("alert"), now=NOW)

    async def script(pilot: Pilot) -> None:
        await pilot.pause()
        assert "ALERT: error rate 31.0% over 60s" in str(app.query_one("#banner", Static).render())
        assert app.query_one("#banner").has_class("-visible", "-error")
        assert app.query_one("ErrorRatePane").has_class("-alert")

    drive(app, script)


def test_a_release_that_will_only_come_back_warns_with_its_cause(tmp_path):
    """Releasing a file whose date folder is a file, or whose date does not exist, says so on
    the screen (a warning naming the cause), instead of re-quarantining it silently."""
    settings = make_settings(tmp_path)
    write(settings.dest / "2025/07/07", b"a file where the date folder should be")
    write(settings.source / "2025-07-07_blocked.txt", b"blocked", OLD)
    write(settings.source / "2025-02-30_nodate.txt", b"no such date", OLD)
    app = dashboard(settings)
    shown: list[tuple[str, str]] = []
    app.notify = lambda message, **kw: shown.append((message, kw.get("severity", "")))  # type: ignore[method-assign]

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 2, "both in quarantine")
        app.host.engine.pause()  # type: ignore[attr-defined]
        await pilot.press("2", "a", "r")
        await until(pilot, lambda: any("Released" in m for m, _ in shown), "the release summary")

    drive(app, script)
    [(summary, severity)] = [(m, s) for m, s in shown if "Released" in m]
    assert severity == "warning"
    assert "2 will be quarantined again" in summary
    assert f"{settings.dest}/2025/07/07 is a file, not a folder" in summary
    assert "its date does not exist" in summary


def test_d_on_an_item_whose_folder_became_a_symlink_deletes_nothing_outside(tmp_path):
    """The quarantine is input: an item folder swapped for a link to a folder outside that
    holds a file of the item's name. `d`, `y` says it failed, and the file outside stays."""
    settings = make_settings(tmp_path)
    write(settings.source / "2025-02-30_bad.txt", b"bad", OLD)
    victim = write(tmp_path / "outside" / "2025-02-30_bad.txt", b"precious")
    app = dashboard(settings)

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await until(pilot, lambda: table.row_count == 1, "the quarantined file")
        [item] = [p for p in settings.quarantine.iterdir() if p.is_dir() and not p.name.startswith(".")]
        (item / "2025-02-30_bad.txt").unlink()
        item.rmdir()
        item.symlink_to(victim.parent)
        await pilot.press("2", "d", "y")
        await until(pilot, lambda: any("failed" in str(n.message) for n in app._notifications), "the refusal")
        assert victim.read_bytes() == b"precious"

    drive(app, script)
