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


def _column(snap: Snapshot, column: str) -> dict[str, str]:
    shown: dict[str, str] = {}

    async def main() -> None:
        async with _Host().run_test() as pilot:
            table = pilot.app.query_one(RetryTable)
            table.show(snap)
            await pilot.pause()
            for item in snap.retry_head:
                shown[item.path] = str(table.get_cell(item.path, column))

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
    assert _column(snap, "next") == {
        "2024-01-01_later.txt": "in 6s",
        "2024-01-02_soon.txt": "in <1s",
        "2024-01-03_due.txt": "now",
        "2024-01-04_in-flight.txt": "now",
    }


def test_while_intake_waits_for_room_a_file_says_waiting_for_room_not_attempts_0_next_try_now():
    snap = dataclasses.replace(
        snapshot("paused-disk"),
        retry_head=(
            RetryItem("2024-01-05_big.bin", 0, None, "move: ENOSPC No space left on device"),
            RetryItem("2024-01-06_flaky.bin", 2, NOW + 5, "move: EIO Input/output error"),
        ),
    )
    assert _column(snap, "next") == {
        "2024-01-05_big.bin": "waiting for room",
        "2024-01-06_flaky.bin": "waiting for room",  # nothing is tried until there is room
    }
    assert _column(snap, "attempts") == {"2024-01-05_big.bin": "none", "2024-01-06_flaky.bin": "2"}
    paused = dataclasses.replace(snap, state="paused")
    assert _column(paused, "next")["2024-01-05_big.bin"] == "when resumed"


def test_a_file_that_found_no_room_says_waiting_for_room_while_intake_runs():
    """A large file that would cross the free-space floor waits while smaller ones go on moving:
    intake is running, yet that file shows "waiting for room" and no attempt, not a time."""
    snap = dataclasses.replace(
        snapshot("running"),
        retry_head=(
            RetryItem("2024-01-03_big.iso", 0, NOW + 4, "waiting for disk space", for_room=True),
            RetryItem("2024-01-04_busy.txt", 1, NOW + 4, "move: EBUSY Device or resource busy"),
        ),
    )
    assert _column(snap, "next") == {"2024-01-03_big.iso": "waiting for room", "2024-01-04_busy.txt": "in 4s"}
    assert _column(snap, "attempts")["2024-01-03_big.iso"] == "none"


def test_enter_on_a_retried_file_shows_its_error_history():
    from reorg_tui.tui.app import ReorgApp
    from reorg_tui.tui.sample import FrozenHost
    from reorg_tui.tui.screens.details import InfoScreen

    app = ReorgApp(FrozenHost("running"), now=NOW)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(RetryTable)
            table.focus()
            table.move_cursor(row=table.get_row_index("2026-03-02_report.xlsx"))
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, InfoScreen)
            text = app.screen.text.plain
            assert "error history" in text
            assert "2026-09-14T14:58:50Z move: EBUSY" in text and "2026-09-14T14:59:52Z move: EBUSY" in text

    asyncio.run(main())


def _shown_at(snap: Snapshot, size: tuple[int, int]) -> tuple[list[str], list[list[str]]]:
    """The retry pane of the whole dashboard at a terminal size: its columns and rows."""
    from reorg_tui.tui.app import ReorgApp
    from reorg_tui.tui.sample import FrozenHost

    class Host(FrozenHost):
        def snapshot(self) -> Snapshot:
            return snap

    out: tuple[list[str], list[list[str]]] = ([], [])

    async def main() -> None:
        app = ReorgApp(Host("running"), now=NOW)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            table = app.query_one(RetryTable)
            out[0].extend(str(c.label) for c in table.columns.values())
            out[1].extend([str(c) for c in table.get_row_at(i)] for i in range(table.row_count))

    asyncio.run(main())
    return out


def test_at_80_columns_each_row_says_when_it_is_tried_next_and_long_names_are_shortened_in_the_middle():
    long_name = "2026-03-02_quarterly-report-for-the-board-final-v7.xlsx"
    snap = dataclasses.replace(
        snapshot(),
        retry_head=(
            RetryItem(long_name, 2, NOW + 6.2, "move: EBUSY Device or resource busy"),
            RetryItem("2026-03-02_photo.jpg", 1, NOW + 1.5, "move: EIO Input/output error"),
        ),
    )
    columns, rows = _shown_at(snap, (80, 24))
    assert columns == ["File", "Next try"]  # the attempts and the error left out, by priority
    assert [r[1] for r in rows] == ["in 6s", "in 2s"]
    shortened = rows[0][0]
    assert "…" in shortened and shortened.startswith("2026-03-02_") and shortened.endswith("v7.xlsx")
    assert rows[1][0] == "2026-03-02_photo.jpg"
    columns, rows = _shown_at(snap, (160, 40))  # room for every column
    assert columns == ["File", "Attempts", "Next try", "Last error"]
    assert rows[1] == ["2026-03-02_photo.jpg", "1", "in 2s", "move: EIO Input/output error"]
