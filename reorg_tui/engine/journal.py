"""The rename journal: a batch's renames written to the ledger by a thread of their own.

A rename needs no intent (it happened or it did not), so its row may be written after the fact;
writing it from the batch's own thread would hold that thread (and, on a backlog, the scanner
that runs the batches) for SQLite's work. Here batches hand their rows over and go on; one writer
thread writes them, several batches a transaction when they come fast. SQLite gives up the GIL
while it works, so on a machine with a second core that work costs the movers nothing.

A crash loses at most the rows still queued: the files have moved, and only history misses them,
as it would any rename cut off between the rename and its row. The queue is bounded: a writer
that falls behind (a slow disk under the state folder) holds batches back rather than memory.

Threads: batch threads ``add``; the writer thread writes; the engine's run ``start``s and
``stop``s it (which writes what is queued first).
"""

from __future__ import annotations

import queue
import threading

from reorg_tui.engine import steps
from reorg_tui.engine.ledger import Ledger, LedgerWriteError, RenameRow, TransferKind
from reorg_tui.engine.move import LEDGER_TROUBLE
from reorg_tui.engine.vital import Vitals

_Entry = tuple[TransferKind, str, list[RenameRow]]
QUEUED_BATCHES = 64


class RenameJournal:
    def __init__(self) -> None:
        self._queue: queue.Queue[_Entry | None] = queue.Queue(maxsize=QUEUED_BATCHES)
        self._thread: threading.Thread | None = None
        self._ledger: Ledger | None = None

    def start(self, ledger: Ledger, vitals: Vitals) -> None:
        self._ledger = ledger
        self._thread = vitals.thread(self._write, "reorg-journal")
        self._thread.start()

    def add(self, kind: TransferKind, batch: str, rows: list[RenameRow]) -> None:
        """Queue a batch's renames (dropped where no writer runs: before the run, or after, or
        once it died: the run is stopping then, and a full queue must not hold a batch)."""
        if self._thread is not None:
            self._put((kind, batch, rows), self._thread)

    def _put(self, entry: _Entry | None, thread: threading.Thread) -> None:
        while thread.is_alive():
            try:
                self._queue.put(entry, timeout=0.2)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        """Write what is queued, then end the writer. A batch that outlives the run (one still
        at work when the engine gave up waiting) adds nothing after: its rows are lost as a
        crash's would be, never written into a ledger being closed."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._put(None, thread)
            thread.join()
        self._ledger = None

    def _write(self) -> None:
        assert self._ledger is not None
        while True:
            entry = self._queue.get()
            entries = []
            while entry is not None:
                entries.append(entry)
                try:
                    entry = self._queue.get_nowait()  # and all that came meanwhile
                except queue.Empty:
                    break
            if entries:
                steps.reached("journaling")
                _write(self._ledger, entries)
            if entry is None:
                return


def _write(ledger: Ledger, entries: list[_Entry]) -> None:
    try:
        for kind, batch, rows in entries:
            ledger.record_renames(kind, batch, rows)
    except LedgerWriteError as exc:  # they have moved: that stays so, recorded or not
        LEDGER_TROUBLE.failed(exc)
    else:
        LEDGER_TROUBLE.ok()
