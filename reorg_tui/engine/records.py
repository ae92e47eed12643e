"""What the retry queue and the quarantine keep, as plain values: the rows the ledger stores for
them (ledger.py) and the shapes retry.py and quarantine.py hand to the faces.

Plain dataclasses, no behaviour beyond what a face reads off them: any thread may hold one (each
is a copy; the queue and the store keep their own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

from reorg_tui.engine.fields import NUMBER, OPTIONAL_TEXT, TEXT, Spec, all_of, problems


@dataclass
class RetryEntry:
    """A file waiting for another try."""

    path: str  # relative to the source
    attempts: int
    next_try: float | None  # wall-clock seconds; None while in flight (handed to a worker)
    last_error: str
    errors: list[str] = field(default_factory=list)
    first_failed: float = 0.0


@dataclass
class Record:
    """A quarantined file: the record kept beside it (``<id>.json``) and in the ledger's index."""

    id: str
    name: str
    original: str  # absolute path in the source it came from
    intended: str | None  # where it was meant to go, if known
    reason: str
    attempts: int
    errors: list[str] = field(default_factory=list)
    quarantined_at: float = 0.0
    first_failed_at: float = 0.0
    size: int = 0

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.quarantined_at)


@dataclass(frozen=True)
class QuarantineStats:
    count: int = 0
    bytes: int = 0
    oldest: float | None = None  # wall-clock time of the oldest item


RECORD = Spec(
    types={
        "id": TEXT,
        "name": TEXT,
        "original": TEXT,
        "intended": OPTIONAL_TEXT,
        "reason": TEXT,
        "attempts": (int,),
        "errors": (list,),
        "quarantined_at": NUMBER,
        "first_failed_at": NUMBER,
        "size": (int,),
    },
    required=frozenset({"id", "name", "original", "intended", "reason", "attempts"}),
)
assert set(RECORD.types) == {f.name for f in fields(Record)}


def plain_id(item_id: str) -> bool:
    """Whether ``item_id`` may name an item: one folder name right below the quarantine, that
    prints as it is (ids are this program's, ``20240101T000000-0a1b2c3d``: a hand-made one is
    taken only if nothing in it leads elsewhere or drives a terminal)."""
    return (
        bool(item_id)
        and "/" not in item_id
        and "\\" not in item_id
        and not item_id.startswith(".")
        and item_id.isprintable()
    )


def plain_name(name: str) -> bool:
    """Whether ``name`` may name the file in an item's folder: one component, never a way out.
    A control character is allowed: a source file may have one, and keeps its exact bytes (it
    is escaped wherever it is shown)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def record_from(data: object, item_id: str | None = None) -> Record | str:
    """A record read back (from its ``<id>.json``, or the ledger's row as a dict), or why it is
    not one this version could have written (for ``item_id``, where given): every field is
    input, the name and id most of all (they name paths)."""
    found = problems(data, RECORD)
    if found or not isinstance(data, dict):
        return "; ".join(found)
    if not all_of(data.get("errors", []), TEXT):
        return "errors is not a list of texts"
    if not plain_id(data["id"]) or (item_id is not None and data["id"] != item_id):
        return f"id {data['id']!r} does not name an item of this quarantine"
    if not plain_name(data["name"]):
        return f"name {data['name']!r} is not one file name"
    if data.get("size", 0) < 0 or data["attempts"] < 0:
        return "a negative size or attempts"
    record = Record(**data)
    record.quarantined_at = float(record.quarantined_at)
    record.first_failed_at = float(record.first_failed_at)
    return record
