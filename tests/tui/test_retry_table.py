"""The retry pane says when each waiting file is tried next, and "now" for one a worker holds."""

from __future__ import annotations

import asyncio
import dataclasses

from textual.app import App, ComposeResult

from reorg_tui.engine.metrics import RetryItem, Snapshot
from reorg_tui.tui.sample import NOW, snapshot
from reorg_tui.tui.widgets.retry_table import RetryTable


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield RetryTable()


def _next_try_column(snap: Snapshot) -> dict[str, str]:
    shown: dict[str, str] = {}

    async def main() -> None:
        async with _Host().run_test() as pilot:
            table = pilot.app.query_one(RetryTable)
            table.show(snap)
            await pilot.pause()
            for item in snap.retry_head:
                shown[item.path] = str(table.get_cell(item.path, "next"))

    asyncio.run(main())
    return shown


def test_each_waiting_file_shows_when_it_is_tried_next():
    snap = dataclasses.replace(
        snapshot(),
        retry_head=(
            RetryItem("2024-01-01_later.txt", 2, NOW + 6.2, "move: EBUSY Device or resource busy"),
            RetryItem("2024-01-02_soon.txt", 1, NOW + 0.4, "move: EIO Input/output error"),
            RetryItem("2024-01-03_due.txt", 1, NOW - 3, "move: EIO Input/output error"),
            RetryItem("2024-01-04_in-flight.txt", 3, None, "move: EIO Input/output error"),
        ),
    )
    assert _next_try_column(snap) == {
        "2024-01-01_later.txt": "in 6s",
        "2024-01-02_soon.txt": "in <1s",
        "2024-01-03_due.txt": "now",
        "2024-01-04_in-flight.txt": "now",
    }
