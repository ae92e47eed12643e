"""The quarantine as the browser filters it: the records in order, and what a filter looks in.

Plain Python, no Textual: a ``Listing`` is built in the worker thread that loads the quarantine
(sorting and lower-casing 50,000 records takes tens of milliseconds), and ``matching`` runs in a
worker too for a large one. Immutable once built, so any thread may read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reorg_tui.engine import Record

_APART = "\0"  # between name and reason: no file name or reason holds one, so no match spans both

# Each column the browser sorts by: the key, and whether its first order is descending (the
# largest, the most tried, the oldest first: what an operator looks for).
SORTS: dict[str, tuple[Callable[[Record], Any], bool]] = {
    "age": (lambda r: (r.quarantined_at, r.id), False),  # oldest first
    "file": (lambda r: (r.name.lower(), r.id), False),
    "reason": (lambda r: (r.reason.lower(), r.id), False),
    "attempts": (lambda r: (r.attempts, r.id), True),
    "size": (lambda r: (r.size, r.id), True),
}
SORT_CYCLE = ("age", "size", "attempts", "reason", "file")  # what `s` steps through


@dataclass(frozen=True)
class Listing:
    ids: tuple[str, ...] = ()  # oldest first, then by id
    by_id: dict[str, Record] = field(default_factory=dict)
    _haystacks: tuple[str, ...] = ()  # name and reason, lower-cased, in the order of ids

    sort: str = "age"
    descending: bool = False

    @classmethod
    def of(cls, records: list[Record], sort: str = "age", descending: bool | None = None) -> Listing:
        """The records ordered by column ``sort`` (SORTS; its first order unless ``descending``)."""
        key, first = SORTS[sort]
        down = first if descending is None else descending
        ordered = sorted(records, key=key, reverse=down)
        return cls(
            sort=sort,
            descending=down,
            ids=tuple(r.id for r in ordered),
            by_id={r.id: r for r in ordered},
            _haystacks=tuple(f"{r.name}{_APART}{r.reason}".lower() for r in ordered),
        )

    def __repr__(self) -> str:  # not 50,000 records (in a log line, a worker's description)
        return f"Listing({len(self.ids):,} items)"

    def sorted_by(self, sort: str, descending: bool | None = None) -> Listing:
        return Listing.of(list(self.by_id.values()), sort, descending)

    @property
    def order(self) -> str:
        """How the rows are ordered, in words."""
        words = {
            ("age", False): "oldest first", ("age", True): "newest first",
            ("size", True): "largest first", ("size", False): "smallest first",
            ("attempts", True): "most tried first", ("attempts", False): "least tried first",
        }  # fmt: skip
        return (
            words.get((self.sort, self.descending))
            or f"by {self.sort}, {'Z-A' if self.descending else 'A-Z'}"
        )

    def __len__(self) -> int:
        return len(self.ids)

    def matching(self, text: str) -> tuple[str, ...]:
        """The ids whose name or reason holds ``text`` (any case), in order; all with none."""
        needle = text.lower()
        if not needle:
            return self.ids
        return tuple(i for i, hay in zip(self.ids, self._haystacks, strict=True) if needle in hay)
