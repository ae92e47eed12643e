"""The History view: search the ledger by file name as you type; enter shows a transfer whole.

Each look at the ledger runs in a thread worker (a read-only SQLite query, never on the UI
thread), a quarter of a second after the last key typed; a look overtaken by newer typing is
dropped when it answers. While shown, the view looks again every few seconds, so new moves appear.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from reorg_tui.engine.ledger import LedgerError, NoLedger, Query, Transfer
from reorg_tui.history import Roots, search_glob
from reorg_tui.names import safe
from reorg_tui.tui.bridge import Host
from reorg_tui.tui.screens.details import InfoScreen, transfer_text
from reorg_tui.tui.widgets.history_table import HistoryTable

DEBOUNCE = 0.25  # seconds after the last key before the ledger is asked
REFRESH = 3.0  # seconds between looks while the view is shown
LIMIT = 500  # rows shown: the newest


class HistoryView(Vertical):
    BINDINGS = [
        Binding("slash", "search", "Search", id="history.search"),
        Binding("down", "rows", "Rows", show=False, id="history.rows"),
        Binding("escape", "clear", "Clear search", show=False, id="history.clear"),
    ]

    class Found(Message):
        def __init__(self, serial: int, rows: list[Transfer], problem: str | None) -> None:
            super().__init__()
            self.serial = serial
            self.rows = rows
            self.problem = problem

    def __init__(self, host: Host, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.host = host
        self._serial = 0  # the newest look asked for; an older answer is dropped
        self._answered = 0  # the look whose rows are shown
        self._typing: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="search by file name: part of it, or a glob such as 2024-11-*", id="history-search"
        )
        yield Static(id="history-note", markup=False)
        yield HistoryTable(id="history-table")

    @property
    def table(self) -> HistoryTable:
        return self.query_one(HistoryTable)

    @property
    def search_box(self) -> Input:
        return self.query_one("#history-search", Input)

    @property
    def settled(self) -> bool:
        """The rows answer what the search box says: nothing typed since, no look under way."""
        return self._typing is None and self._answered == self._serial

    def on_mount(self) -> None:
        if self.host.live:
            self.set_interval(REFRESH, self._again)

    def on_show(self) -> None:
        self.look()

    def _again(self) -> None:
        if self.is_on_screen and self._typing is None:
            self.look()

    def action_search(self) -> None:
        self.search_box.focus()

    def action_rows(self) -> None:
        self.table.focus()

    def action_clear(self) -> None:
        self.search_box.value = ""  # its Changed looks again, with no filter
        self.table.focus()

    @on(Input.Changed, "#history-search")
    def _typed(self) -> None:
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.set_timer(DEBOUNCE, self._typed_done)

    def _typed_done(self) -> None:
        self._typing = None
        self.look()

    @on(Input.Submitted, "#history-search")
    def _submitted(self) -> None:
        self.table.focus()

    def look(self) -> None:
        """Ask the ledger for what the search box says, in a worker."""
        self._serial += 1
        self._read(self._serial, Query(name=search_glob(self.search_box.value), limit=LIMIT))

    @work(thread=True, group="history", exit_on_error=False)
    def _read(self, serial: int, query: Query) -> None:
        rows: list[Transfer] = []
        problem = None
        try:
            rows = self.host.history(query)
        except NoLedger:
            problem = "No history yet: no file has been moved with this state folder"
        except LedgerError as exc:
            problem = str(exc)
        except Exception as exc:  # a look that failed says why; the next one may succeed
            problem = f"Could not read the history: {type(exc).__name__}: {exc}"
        self.post_message(self.Found(serial, rows, problem))

    def on_history_view_found(self, message: Found) -> None:
        if message.serial != self._serial:
            return  # overtaken: newer typing has asked again
        self._answered = message.serial
        snap = self.host.snapshot()
        self.table.show(message.rows, Roots(snap.source, snap.dest, snap.quarantine_dir))
        note = self.query_one("#history-note", Static)
        if message.problem is not None:
            note.update(safe(message.problem))
        else:
            shown = " (the newest)" if len(message.rows) >= LIMIT else ""
            note.update(
                f"{len(message.rows)} transfer(s){shown}, newest first; paths below {safe(snap.source)} "
                f"and {safe(snap.dest)} from there; enter shows one whole"
            )

    @on(DataTable.RowSelected, "#history-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.table.transfers.get(event.row_key.value or "")
        if row is not None:
            self.app.push_screen(InfoScreen(f"Transfer {row.id}", transfer_text(row)))
