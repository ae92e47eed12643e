"""What the retry queue and the quarantine keep, as plain values: the rows the ledger stores for
them (ledger.py) and the shapes retry.py and quarantine.py hand to the faces.

Plain dataclasses, no behaviour beyond what a face reads off them: any thread may hold one (each
is a copy; the queue and the store keep their own).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, fields

from reorg_tui.engine.fields import NUMBER, OPTIONAL_TEXT, TEXT, Spec, a_count, a_time, all_of, problems


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


_OURS = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{8}")  # quarantine.new_id's ids: plain by their form


def plain_id(item_id: str) -> bool:
    """Whether ``item_id`` may name an item: one folder name right below the quarantine, that
    prints as it is (ids are this program's, ``20240101T000000-0a1b2c3d``: a hand-made one is
    taken only if nothing in it leads elsewhere or drives a terminal)."""
    if _OURS.fullmatch(item_id):  # the form this program gives (a listing of 50,000 asks each)
        return True
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


def checked_record(
    item_id: object,
    name: object,
    original: object,
    intended: object,
    reason: object,
    attempts: object,
    errors: list[str],
    quarantined_at: object,
    first_failed_at: object,
    size: object,
) -> Record | None:
    """A record from its fields if each is what this version writes (RECORD's types; an id and a
    name that lead nowhere else; no negative count), else None. The one rule for a record file
    and a ledger row alike, written out flat: a listing of 50,000 items runs it for each."""
    if not (
        type(item_id) is str
        and type(name) is str
        and type(original) is str
        and type(reason) is str
        and (intended is None or type(intended) is str)
        and a_count(attempts)
        and a_count(size)
        and a_time(quarantined_at)
        and a_time(first_failed_at)
    ):
        return None
    if not plain_id(item_id) or not plain_name(name):
        return None
    return Record(
        item_id,
        name,
        original,
        intended,  # type: ignore[arg-type]
        reason,
        attempts,
        errors,
        float(quarantined_at),  # type: ignore[arg-type]
        float(first_failed_at),  # type: ignore[arg-type]
        size,
    )


def record_from(data: object, item_id: str | None = None) -> Record | str:
    """A record read back from its ``<id>.json`` (for ``item_id``, where given), or why it is
    not one this version could have written: every field is input, the name and id most of all
    (they name paths)."""
    found = problems(data, RECORD)
    if found or not isinstance(data, dict):
        return "; ".join(found)
    if not all_of(data.get("errors", []), TEXT):
        return "errors is not a list of texts"
    if item_id is not None and data["id"] != item_id:
        return f"id {data['id']!r} is not its file's"
    record = checked_record(
        data["id"],
        data["name"],
        data["original"],
        data["intended"],
        data["reason"],
        data["attempts"],
        data.get("errors", []),
        data.get("quarantined_at", 0.0),
        data.get("first_failed_at", 0.0),
        data.get("size", 0),
    )
    if record is None:
        return f"id {data['id']!r} or name {data['name']!r} leads out of its item, or a count is negative"
    return record
