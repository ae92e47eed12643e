"""History: where files went, when, and through which attempts, read from an instance's ledger.

The ledger is opened read-only for each look and closed after it (``open_ledger(read_only=
True)``): reading never creates, migrates or writes it, whether its daemon runs or not. Both
faces read it here, the ``history`` command and the dashboard's History view; the words for a
transfer's outcome, and its JSON form, are written once, here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reorg_tui.engine.ledger import Query, Step, Transfer, TransferKind, open_ledger
from reorg_tui.names import safe

GLOB_CHARS = frozenset("*?[")

_DONE = {
    TransferKind.DELIVER: "delivered",
    TransferKind.QUARANTINE: "quarantined",
    TransferKind.RELEASE: "released",
    TransferKind.UNDO: "undone",
}


def read(state_dir: Path, query: Query) -> list[Transfer]:
    """The transfers ``query`` matches, newest first. NoLedger where there is no ledger yet;
    LedgerError where it cannot be read (from a newer version, say)."""
    ledger = open_ledger(state_dir, read_only=True)
    try:
        return ledger.query(query)
    finally:
        ledger.close()


def is_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


def search_glob(text: str) -> str | None:
    """What the dashboard's search box asks for: a glob as typed; other text anywhere in the
    file name; nothing typed, every row."""
    text = text.strip()
    if not text:
        return None
    return text if is_glob(text) else f"*{text}*"


def outcome(row: Transfer) -> str:
    """Its kind and how far it got, in a word or two: ``delivered``, ``deliver withdrawn``..."""
    if row.step is Step.DONE:
        return _DONE[row.kind]
    if row.step is Step.WITHDRAWN:
        return f"{row.kind.value} withdrawn"
    return f"{row.kind.value} {row.step.value}"


def meaning(row: Transfer) -> str | None:
    """What an outcome other than done means for the file, for a reader who asks."""
    if row.step is Step.WITHDRAWN:
        return "nothing was published: the file stayed where it was"
    if row.step.open:
        return "in progress, or cut short by a crash (the next start finishes or withdraws it)"
    return None


def when(row: Transfer) -> float:
    """When it ended (or, still open, began)."""
    return row.finished if row.finished is not None else row.started


def stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def attempts(row: Transfer) -> str:
    return "1 attempt" if row.attempts == 1 else f"{row.attempts} attempts"


def block(row: Transfer) -> list[str]:
    """One transfer as ``history`` prints it: whole paths, escaped for the terminal."""
    note = meaning(row)
    lines = [
        f"{stamp(when(row))}  {outcome(row)}{f': {note}' if note else ''}  ({attempts(row)})",
        f"  from  {safe(row.source_path)}",
        f"  to    {safe(row.target_path)}",
    ]
    if row.errors:
        lines.append("  earlier attempts:")
        lines += [f"    {safe(error)}" for error in row.errors]
    return lines


def as_dict(row: Transfer) -> dict[str, Any]:
    """Its JSON form. Paths are strings: an undecodable byte is the lone surrogate U+DC80-U+DCFF
    that Python's surrogateescape gives it (``\\udcff`` for 0xff), so ``os.fsencode`` on the
    string gives the path's bytes back."""
    return {
        "id": row.id,
        "kind": row.kind.value,
        "step": row.step.value,
        "outcome": outcome(row),
        "source": os.fsdecode(row.source),
        "target": os.fsdecode(row.target),
        "started": row.started,
        "finished": row.finished,
        "size": row.identity.size,
        "batch": row.batch,
        "attempts": row.attempts,
        "errors": list(row.errors),
        "undoes": row.undoes,
    }


@dataclass(frozen=True)
class Roots:
    """The folders a path is shown relative to where that reads better (a table's columns)."""

    source: str
    dest: str
    quarantine: str

    def short(self, path: str) -> str:
        """Below the source or the destination: the rest; in the quarantine: ``quarantine/`` and
        the name (its item folder is in the details); elsewhere: the whole path."""
        if self.quarantine and path.startswith(self.quarantine.rstrip("/") + "/"):
            return "quarantine/" + os.path.basename(path)
        for root in (self.dest, self.source):
            if root and path.startswith(root.rstrip("/") + "/"):
                return path[len(root.rstrip("/")) + 1 :]
        return path
