"""The quarantine browser's rows on a fixed state: their order when a filter comes and goes, a
large quarantine listed a window at a time, and what a filter matches."""

from __future__ import annotations

import dataclasses

from textual.pilot import Pilot
from textual.widgets import Static

from reorg_tui.engine import Record
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.quarantine_listing import Listing
from reorg_tui.tui.sample import NOW, RECORDS, FrozenHost
from reorg_tui.tui.widgets.quarantine_table import WINDOW, QuarantineTable
from tests.tui.test_dashboard import drive, table_cells

MANY = 2 * WINDOW + 50  # a listing the table holds in three windows


class ManyHost(FrozenHost):
    """The sample state with a quarantine of MANY items, item n quarantined n seconds in."""

    def quarantine_list(self) -> list[Record]:
        base = RECORDS[0]
        return [
            dataclasses.replace(base, id=f"item-{n:05d}", name=f"file-{n:05d}.dat", quarantined_at=1e9 + n)
            for n in reversed(range(MANY))  # not in order: the browser sorts, oldest first
        ]


def names(table: QuarantineTable) -> list[str]:
    return [row[1] for row in table_cells(table)]


def note(app: ReorgApp) -> str:
    widget = app.query_one("#quarantine-note", Static)
    return str(widget.render()) if widget.display else ""


def test_rows_a_filter_hid_come_back_in_their_place_when_it_is_cleared():
    app = ReorgApp(FrozenHost(), now=NOW)
    in_order = [r.name for r in sorted(RECORDS, key=lambda r: r.quarantined_at)]

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await pilot.press("2")
        assert names(table) == in_order
        await pilot.press("slash", *"backup", "enter", "down")
        assert names(table) == ["2026-03-01_backup.tar"]
        assert note(app) == f"1 of {len(RECORDS)} match 'backup'"
        await pilot.press("escape")
        assert names(table) == in_order, "not the hidden rows added at the end"
        assert table.current_key == next(r.id for r in RECORDS if r.name == "2026-03-01_backup.tar")
        assert note(app) == "", "every row shown, no filter: nothing to say"

    drive(app, script)


def test_a_large_quarantine_is_listed_a_window_at_a_time_and_a_marks_every_match():
    app = ReorgApp(ManyHost(), now=NOW)

    async def script(pilot: Pilot) -> None:
        table = app.query_one(QuarantineTable)
        await pilot.press("2")
        assert table.row_count == WINDOW
        assert names(table)[:2] == ["file-00000.dat", "file-00001.dat"], "oldest first"
        assert note(app) == f"{MANY:,} files, oldest first; {WINDOW} listed, more at the last row"
        await pilot.press("end")  # the last row listed: the next window joins below it
        await pilot.pause()
        assert table.row_count == 2 * WINDOW
        assert table.current_key == f"item-{WINDOW - 1:05d}", "the cursor stays on its row"
        await pilot.press("end")
        await pilot.pause()
        assert table.row_count == MANY
        assert names(table)[-1] == f"file-{MANY - 1:05d}.dat"
        await pilot.press("slash", *"file-000", "enter")  # file-00000 to file-00099
        assert table.row_count == 100 and len(table.matches) == 100
        await pilot.press("escape", "a")  # no filter: every item, listed or not yet
        assert len(table.marked) == MANY
        await pilot.press("u", "slash", *"file-00", "enter", "a")  # 0 to 999: more than listed
        assert table.row_count == WINDOW and len(table.marked) == min(MANY, 1000)

    drive(app, script)


def test_a_filter_looks_in_name_and_reason_in_any_case_and_never_across_them():
    records = [
        dataclasses.replace(RECORDS[0], id="b", name="Report.PDF", reason="EPERM on dest", quarantined_at=2),
        dataclasses.replace(RECORDS[0], id="a", name="photo.jpg", reason="not a real date", quarantined_at=1),
    ]
    listing = Listing.of(records)
    assert listing.ids == ("a", "b") and listing.matching("") == ("a", "b")
    assert listing.matching("report.pdf") == ("b",) and listing.matching("eperm") == ("b",)
    assert listing.matching("DATE") == ("a",)
    assert listing.matching("jpgnot") == () and listing.matching("pdfeperm") == ()
    assert len(repr(Listing.of(records * 25_000))) < 100, "a log line or a worker's description, not 50,000"


class SortHost(FrozenHost):
    """A quarantine whose every column orders it differently, and a large one (sorted in a
    worker, as filtering is)."""

    def __init__(self, count: int = 6) -> None:
        super().__init__()
        self.count = count

    def quarantine_list(self) -> list[Record]:
        base = RECORDS[0]
        return [
            dataclasses.replace(
                base,
                id=f"item-{n:05d}",
                name=f"{chr(ord('a') + (n * 7) % 26)}-file-{n:05d}.dat",
                reason=f"reason {(n * 3) % 10}",
                attempts=n % 4,
                size=(n * 37) % 1000,
                quarantined_at=1e9 + n,
            )
            for n in range(self.count)
        ]


def test_s_cycles_the_sort_and_a_header_click_sorts_by_its_column_both_ways():
    for count in (6, 2_500):  # inline, and in a worker (over FILTER_INLINE)
        host = SortHost(count)
        app = ReorgApp(host, now=NOW)
        records = {r.name: r for r in host.quarantine_list()}

        async def script(pilot: Pilot, records=records, app=app) -> None:
            await pilot.press("2")
            table = app.query_one(QuarantineTable)

            async def settle() -> list[Record]:
                for _ in range(200):
                    if table.settled:
                        break
                    await pilot.pause(0.02)
                await pilot.pause()
                return [records[name] for name in names(table)]

            shown = await settle()
            assert [r.quarantined_at for r in shown] == sorted(
                r.quarantined_at for r in shown
            )  # oldest first
            await pilot.press("s")
            shown = await settle()
            assert [r.size for r in shown] == sorted((r.size for r in records.values()), reverse=True)[
                : len(shown)
            ]
            assert "largest first" in note(app)
            await pilot.press("s")
            shown = await settle()
            assert [r.attempts for r in shown] == sorted((r.attempts for r in shown), reverse=True)
            assert "most tried first" in note(app)
            x = sum(c.get_render_width(table) for c in list(table.columns.values())[:1]) + 1  # "File"
            await pilot.click(QuarantineTable, offset=(x, 0))
            shown = await settle()
            assert [r.name for r in shown] == sorted(records)[: len(shown)]
            await pilot.click(QuarantineTable, offset=(x, 0))  # again: the other way
            shown = await settle()
            assert [r.name for r in shown] == sorted(records, reverse=True)[: len(shown)]
            assert "Z-A" in note(app)

        drive(app, script)
