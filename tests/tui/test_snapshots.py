"""Pictures of the dashboard on a fixed state, at the smallest and a roomy terminal size.

Update after an intended change with: python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.sample import NOW, FrozenHost
from reorg_tui.tui.screenshots import settle


def app(state: str = "running") -> ReorgApp:
    return ReorgApp(FrozenHost(state), now=NOW)


def test_overview_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24))


def test_overview_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40))


def test_paused_for_disk_80x24(snap_compare):
    assert snap_compare(app("paused-disk"), terminal_size=(80, 24))


def test_quarantine_browser_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), press=["2"])


def test_quarantine_browser_80x24_reasons_lead_with_the_cause(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), press=["2"])


def test_quarantine_details_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=settled("2", "down", "enter"))


def settled(*keys: str):
    """Press the keys, then wait for what they started in workers (as the README's pictures do)."""

    async def run_before(pilot) -> None:
        await pilot.press(*keys)
        await settle(pilot)

    return run_before


def test_history_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=settled("3", *"photo"))


def test_history_details_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=settled("3", "enter", "down", "enter"))


def test_waiting_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), press=["4"])


def test_light_theme_120x40(snap_compare):
    async def light(pilot):
        pilot.app.theme = "textual-light"

    assert snap_compare(app(), terminal_size=(120, 40), run_before=light)


def test_alerts_wrap_80x24(snap_compare):
    assert snap_compare(app("alert"), terminal_size=(80, 24))
