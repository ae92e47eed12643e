"""Make the README's screenshots from the fixed sample state: ``python -m reorg_tui.tui.screenshots``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.sample import NOW, FrozenHost
from reorg_tui.tui.widgets.history_view import HistoryView

SHOTS = (
    ("dashboard.svg", "running", (), (120, 36)),
    ("dashboard-80x24.svg", "running", (), (80, 24)),
    ("paused-for-disk.svg", "paused-disk", (), (120, 36)),
    ("quarantine.svg", "running", ("2",), (120, 30)),
    ("quarantine-details.svg", "running", ("2", "down", "enter"), (120, 30)),
    ("history.svg", "running", ("3", *"photo"), (120, 30)),
    ("waiting.svg", "running", ("4",), (120, 24)),
)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for what the keys started off the UI thread (the History view's rows, a quarantined
    file's details) and for what it posted back to be shown."""
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.query_one(HistoryView).settled and not any(w.is_running for w in app.workers):
            break
        await pilot.pause(0.05)
    await pilot.pause()


async def _shoot(folder: Path, name: str, state: str, keys: tuple[str, ...], size: tuple[int, int]) -> None:
    app = ReorgApp(FrozenHost(state), now=NOW)
    async with app.run_test(size=size) as pilot:
        if keys:
            await pilot.press(*keys)
        await settle(pilot)
        app.save_screenshot(filename=name, path=str(folder))


def main(folder: str = "screenshots") -> int:
    out = Path(folder)
    out.mkdir(exist_ok=True)
    for name, state, keys, size in SHOTS:
        asyncio.run(_shoot(out, name, state, keys, size))
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
