"""What the retry queue and the quarantine keep, as plain values: the rows the ledger stores for
them (ledger.py) and the shapes retry.py and quarantine.py hand to the faces.

Plain dataclasses, no behaviour beyond what a face reads off them: any thread may hold one (each
is a copy; the queue and the store keep their own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
