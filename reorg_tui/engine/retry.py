"""The backoff schedule and the retry queue, which survives a restart."""

from __future__ import annotations

import heapq
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reorg_tui.engine.store import write_atomic

log = logging.getLogger(__name__)
MAX_ERRORS_KEPT = 50


def backoff(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with jitter.

    The jitter keeps the delay in [half, full] of the exponential value so that many files that
    failed together do not all come back in the same instant.
    """
    full = min(cap, base * (2 ** min(attempt - 1, 62)))
    return full * (0.5 + 0.5 * rng())


def stamped(error: str, when: float) -> str:
    """An error with its UTC time, as kept in the history of a retried or quarantined file."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime(when)) + error


@dataclass
class RetryEntry:
    path: str  # relative to the source
    attempts: int
    next_try: float | None  # wall-clock seconds; None while in flight (handed to a worker)
    last_error: str
    errors: list[str] = field(default_factory=list)
    first_failed: float = 0.0


class RetryQueue:
    """Files waiting for another try. Not thread-safe: Failures (failures.py) holds its lock around it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, RetryEntry] = {}
        self._heap: list[tuple[float, str]] = []
        self.dirty = False

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, rel: str) -> bool:
        return rel in self.entries

    def schedule(self, rel: str, attempts: int, delay: float, error: str, now: float) -> RetryEntry:
        entry = self.entries.get(rel)
        if entry is None:
            entry = RetryEntry(rel, attempts, now + delay, error, [], now)
            self.entries[rel] = entry
        entry.attempts = attempts
        entry.next_try = now + delay
        entry.last_error = error
        entry.errors = (entry.errors + [stamped(error, now)])[-MAX_ERRORS_KEPT:]
        heapq.heappush(self._heap, (entry.next_try, rel))
        self.dirty = True
        return entry

    def attempts(self, rel: str) -> int:
        entry = self.entries.get(rel)
        return entry.attempts if entry else 0

    def errors(self, rel: str) -> list[str]:
        entry = self.entries.get(rel)
        return list(entry.errors) if entry else []

    def forget(self, rel: str) -> None:
        if self.entries.pop(rel, None) is not None:
            self.dirty = True

    def pop_due(self, now: float, limit: int) -> list[str]:
        """Paths whose next try has come, at most ``limit``; they stay known until forgotten."""
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now and len(due) < limit:
            when, rel = heapq.heappop(self._heap)
            entry = self.entries.get(rel)
            if entry is not None and entry.next_try == when:
                entry.next_try = None
                due.append(rel)
        return due

    def next_due(self) -> float | None:
        while self._heap:
            when, rel = self._heap[0]
            entry = self.entries.get(rel)
            if entry is not None and entry.next_try == when:
                return when
            heapq.heappop(self._heap)
        return None

    def head(self, limit: int) -> list[RetryEntry]:
        """The entries due soonest, for the snapshot; files in flight come last."""
        waiting = heapq.nsmallest(limit, self.entries.values(), key=_due_order)
        return [RetryEntry(**asdict(e)) for e in waiting]

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        data = [asdict(e) for e in self.entries.values()]
        for item in data:
            if item["next_try"] is None:
                # After a restart no worker holds it: due at once. 0.0, as every version wrote.
                item["next_try"] = 0.0
        write_atomic(self.path, json.dumps({"version": 1, "entries": data}).encode())
        self.dirty = False

    def load(self) -> int:
        """Restore the queue saved by an earlier run; a corrupt file is set aside, not fatal."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            raw = json.loads(self.path.read_bytes())
            items = raw["entries"]
            loaded = [RetryEntry(**item) for item in items]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_suffix(".corrupt")
            log.warning("retry queue %s is unreadable (%s); set aside as %s", self.path, exc, aside)
            os.replace(self.path, aside)
            return 0
        for entry in loaded:
            if not _plain_relative(entry.path):
                log.warning("retry queue %s: ignored an entry with a bad path %r", self.path, entry.path)
                continue
            if entry.next_try is None:
                entry.next_try = 0.0  # no time (in flight when saved): due at once, as 0.0 is
            self.entries[entry.path] = entry
            heapq.heappush(self._heap, (entry.next_try, entry.path))
        return len(self.entries)


def _due_order(entry: RetryEntry) -> tuple[bool, float]:
    """Soonest first, and files in flight (no time) after all the others."""
    return entry.next_try is None, entry.next_try or 0.0


def _plain_relative(path: object) -> bool:
    """A path as the scan makes them: relative, no empty, "." or ".." parts, no NUL."""
    return (
        isinstance(path, str)
        and bool(path)
        and "\0" not in path
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )
