"""The quarantine as the browser filters it: the records in order, and what a filter looks in.

Plain Python, no Textual: a ``Listing`` is built in the worker thread that loads the quarantine
(sorting and lower-casing 50,000 records takes tens of milliseconds), and ``matching`` runs in a
worker too for a large one. Immutable once built, so any thread may read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reorg_tui.engine import Record

_APART = "\0"  # between name and reason: no file name or reason holds one, so no match spans both


@dataclass(frozen=True)
class Listing:
    ids: tuple[str, ...] = ()  # oldest first, then by id
    by_id: dict[str, Record] = field(default_factory=dict)
    _haystacks: tuple[str, ...] = ()  # name and reason, lower-cased, in the order of ids

    @classmethod
    def of(cls, records: list[Record]) -> Listing:
        ordered = sorted(records, key=lambda r: (r.quarantined_at, r.id))
        return cls(
            ids=tuple(r.id for r in ordered),
            by_id={r.id: r for r in ordered},
            _haystacks=tuple(f"{r.name}{_APART}{r.reason}".lower() for r in ordered),
        )

    def __repr__(self) -> str:  # not 50,000 records (in a log line, a worker's description)
        return f"Listing({len(self.ids):,} items)"

    def __len__(self) -> int:
        return len(self.ids)

    def matching(self, text: str) -> tuple[str, ...]:
        """The ids whose name or reason holds ``text`` (any case), in order; all with none."""
        needle = text.lower()
        if not needle:
            return self.ids
        return tuple(i for i, hay in zip(self.ids, self._haystacks, strict=True) if needle in hay)
