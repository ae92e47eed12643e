"""The Activity pane as an operator reads it: it follows the newest events, holds still once
scrolled up, says so, and follows again on a key."""

from __future__ import annotations

import threading

from textual.pilot import Pilot

from reorg_tui.engine import events as ev
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.sample import NOW, FrozenHost
from reorg_tui.tui.widgets.activity import ActivityLog
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
