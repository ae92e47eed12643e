"""The Activity pane as an operator reads it: it follows the newest events, holds still once
scrolled up, says so, and follows again on a key."""

from __future__ import annotations

import threading

from textual.pilot import Pilot
from textual.widgets import Static

from reorg_tui.engine import events as ev
from reorg_tui.engine.engine import Engine
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost
from reorg_tui.tui.sample import NOW, RECORDS, FrozenHost
from reorg_tui.tui.screens.details import InfoScreen
from reorg_tui.tui.widgets.activity import ActivityLog
from reorg_tui.tui.widgets.retry_table import RetryTable
from tests.conftest import OLD, make_settings, write
from tests.tui.test_dashboard import drive, until


class FeedHost(FrozenHost):
    """The sample state, live: the app refreshes from it on its timer, and a test hands it events."""

    live = True

    def __init__(self) -> None:
        super().__init__()
        self.feed: list[ev.Event] = []

    def run(self, stop: threading.Event) -> None:
        stop.wait()

    def drain_events(self) -> list[ev.Event]:
        out, self.feed = self.feed, []
        return out


def moved(i: int) -> ev.Moved:
    name = f"2026-03-02_f{i:04d}.txt"
    return ev.Moved(f"/srv/inbox/{name}", f"/srv/archive/2026/03/02/{name}", 10, 0.001, "moved", at=NOW + i)


def visible(log: ActivityLog) -> list[str]:
    """The lines the pane draws, top to bottom, as the operator sees them."""
    return [log.render_line(y).text.rstrip() for y in range(log.scrollable_content_region.height)]


def details_text(app: ReorgApp) -> str:
    assert isinstance(app.screen, InfoScreen)
    return str(app.screen.query_one("#details-text", Static).render())


def newest_shown(log: ActivityLog) -> str:
    return next((line for line in reversed(visible(log)) if line), "")


def test_after_a_burst_the_newest_line_shows_and_scrolling_up_holds_the_view_until_f():
    host = FeedHost()
    host.feed.extend(moved(i) for i in range(500))  # a burst from the start, before any layout
    app = ReorgApp(host, refresh_interval=0.05, now=NOW)

    async def script(pilot: Pilot) -> None:
        log = app.query_one(ActivityLog)
        # 2,000 events in all: some handed over with no layout pass between two writes, some a
        # refresh apart; meanwhile an alert's banner makes the pane a line shorter (in the demo
        # that alone stopped it following for good).
        for chunk in range(5, 20):
            host.feed.extend(moved(i) for i in range(chunk * 100, chunk * 100 + 100))
            if chunk == 12:
                host.state = "alert"
            if chunk < 10:
                app.refresh_from_engine()
            else:
                await until(pilot, lambda: not host.feed, "a refresh to take the events")
        await pilot.pause(0.2)
        assert "2026-03-02_f1999.txt" in newest_shown(log)
        assert not log.border_subtitle

        log.focus()
        await pilot.press("pageup", "pageup")
        await until(pilot, lambda: "f1999" not in newest_shown(log), "the view to scroll up")
        await pilot.pause(0.3)  # let the scroll settle
        held = visible(log)
        assert "not following" in str(log.border_subtitle)

        host.feed.extend(moved(i) for i in range(2000, 2300))  # older lines make room for these
        await until(pilot, lambda: not host.feed, "the refresh to take the events")
        await pilot.pause(0.2)
        assert visible(log) == held, "the view moved while the operator was reading it"
        assert "not following · 300 new" in str(log.border_subtitle)

        await pilot.press("f")
        await pilot.pause(0.1)
        assert "2026-03-02_f2299.txt" in newest_shown(log)
        assert not log.border_subtitle
        host.feed.extend(moved(i) for i in range(2300, 2310))
        await until(pilot, lambda: "f2309" in newest_shown(log), "the pane to follow again")

    drive(app, script)


def test_end_in_the_pane_follows_again_and_so_does_scrolling_back_down():
    host = FeedHost()
    app = ReorgApp(host, refresh_interval=0.05, now=NOW)

    async def script(pilot: Pilot) -> None:
        log = app.query_one(ActivityLog)
        host.feed.extend(moved(i) for i in range(200))
        await until(pilot, lambda: "f0199" in newest_shown(log), "the newest line")
        log.focus()
        await pilot.press("home")
        await until(pilot, lambda: "not following" in str(log.border_subtitle), "the pane to stop following")
        host.feed.extend(moved(i) for i in range(200, 210))
        await until(pilot, lambda: "10 new" in str(log.border_subtitle), "the count of new lines")
        await pilot.press("end")
        await until(pilot, lambda: "f0209" in newest_shown(log), "End to jump to the newest")
        assert not log.border_subtitle

        await pilot.press("up")
        await until(pilot, lambda: "not following" in str(log.border_subtitle), "up to stop following")
        await pilot.press("down")
        await until(pilot, lambda: not log.border_subtitle, "scrolling back to the end to follow")
        host.feed.extend(moved(i) for i in range(210, 220))
        await until(pilot, lambda: "f0219" in newest_shown(log), "the pane to follow")

    drive(app, script)


def test_moves_show_their_folder_under_dest_and_a_renamed_one_its_new_name(tmp_path):
    settings = make_settings(tmp_path)
    write(settings.dest / "2025/03/14/2025-03-14_clash.txt", b"already there")
    write(settings.source / "2025-03-14_clash.txt", b"newcomer", OLD)
    write(settings.source / "2025-03-15_plain.txt", b"plain", OLD)
    app = ReorgApp(EngineHost(Engine(settings)), refresh_interval=0.1)

    async def script(pilot: Pilot) -> None:
        log = app.query_one(ActivityLog)
        arrived = (" moved ", " renamed ")  # the clash arrives under a new name: its line says renamed
        await until(
            pilot, lambda: sum(any(w in line for w in arrived) for line in visible(log)) == 2, "two moves"
        )
        lines = visible(log)
        assert any("2025-03-14_clash.txt → 2025/03/14/2025-03-14_clash (1).txt" in line for line in lines)
        assert any("2025-03-15_plain.txt → 2025/03/15/ " in line for line in lines)

        log.focus()
        clash = next(i for i, e in enumerate(log.events) if "clash" in getattr(e, "source", ""))
        await pilot.press(*["up"] * (len(log.events) - 1 - clash), "enter")
        assert isinstance(app.screen, InfoScreen)
        shown = details_text(app)
        assert f"source  {settings.source / '2025-03-14_clash.txt'}" in shown
        assert f"destination  {settings.dest / '2025/03/14/2025-03-14_clash (1).txt'}" in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, InfoScreen)

    drive(app, script, size=(200, 40))  # the pane wide enough for the whole of both lines


def test_enter_shows_an_activity_line_or_a_retry_row_whole():
    app = ReorgApp(FrozenHost(), now=NOW)

    async def script(pilot: Pilot) -> None:
        await pilot.pause()
        log = app.query_one(ActivityLog)
        log.focus()
        await pilot.press("enter")  # the newest line: the quarantined backup
        shown = details_text(app)
        assert "move: EPERM Operation not permitted" in shown
        assert f"stored at  /srv/archive/_quarantine/{RECORDS[2].id}/2026-03-01_backup.tar" in shown
        await pilot.press("escape", "up", "up", "enter")  # the retried report
        shown = details_text(app)
        assert "source  /srv/inbox/2026-03-02_report.xlsx" in shown
        assert "error  move: EBUSY Device or resource busy" in shown
        await pilot.press("escape")

        app.query_one(RetryTable).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, InfoScreen)
        shown = details_text(app)
        assert "source  /srv/inbox/2026-03-02_report.xlsx" in shown
        assert "last error  move: EBUSY Device or resource busy" in shown

    drive(app, script, size=(80, 24))


def test_slash_filters_the_activity_as_you_type_e_shows_errors_and_escape_shows_all_again():
    """Typed text matches the whole event (the full path, the whole error, any case), ``re:`` a
    regular expression; e keeps the events that went wrong; the filtered-out lines come back."""
    host = FeedHost()
    app = ReorgApp(host, refresh_interval=0.05)

    async def script(pilot: Pilot) -> None:
        host.feed = [moved(i) for i in range(30)] + [
            ev.Retried(
                "/srv/inbox/2026-03-02_report.xlsx",
                1,
                "move: EBUSY Device or resource busy",
                2.0,
                at=NOW + 40,
            ),
            ev.Quarantined(
                "/srv/inbox/2026-02-30_bad.txt", "2026-02-30 is not a real date", 0, "x1", at=NOW + 41
            ),
            moved(99),
        ]
        log = app.query_one(ActivityLog)
        await until(pilot, lambda: len(log.events) == 33, "every line")
        log.focus()
        await pilot.press("slash")
        await pilot.press(*"ebusy")  # in the error text, not the short line's words only
        await until(pilot, lambda: len(log.events) == 1, "the filter to keep one line")
        assert isinstance(log.events[0], ev.Retried)
        assert "matching 'ebusy': 1 of 33" in str(log.border_subtitle)
        host.feed = [moved(100), ev.Failed("/srv/inbox/2026-03-02_x.dat", "move: EBUSY busy", at=NOW + 50)]
        await until(pilot, lambda: len(log.events) == 2, "a new matching line, and only it")
        await pilot.press("enter")  # to the lines, the filter kept
        assert app.focused is log and len(log.events) == 2
        await pilot.press("escape")
        await until(pilot, lambda: len(log.events) == 35, "every line again")
        await pilot.press("e")
        await until(pilot, lambda: len(log.events) == 3, "the errors only")
        assert {type(e) for e in log.events} == {ev.Retried, ev.Quarantined, ev.Failed}
        await pilot.press("e")
        await until(pilot, lambda: len(log.events) == 35, "every line, errors off")
        await pilot.press("slash")
        await pilot.press(*r"re:f00(1|2)\d")
        await until(pilot, lambda: len(log.events) == 20, "the regular expression's lines")
        await pilot.press("backspace", "backspace", "(")  # re:f00(1|2( : not an expression
        await until(pilot, lambda: "not a regular expression" in str(log.border_subtitle), "the why")
        assert log.events == []

    drive(app, script)
