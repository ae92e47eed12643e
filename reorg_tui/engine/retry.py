"""The backoff schedule and the retry queue, which survives a restart in the ledger.

The queue lives in memory (a dict by path, a heap by due time); ``save`` writes the entries that
changed since the last save to the ledger, in one transaction (the housekeeper calls it once a
second: a daemon with nothing to retry writes nothing). ``load`` reads the ledger back, and once
imports the ``retry.json`` that versions before the ledger kept, renaming it
``retry.json.imported``. Both check every entry as data, not trusted input: a path that is not a
plain relative one is dropped with a warning, an entry of the wrong shape too; and one that the
settings of this run would not take (``--ignore``, ``--pattern``, ``--recursive``) is dropped
with a log line, so that neither a change of settings nor a planted row moves such a file.
"""

from __future__ import annotations

import heapq
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from reorg_tui.engine.clocks import Now
from reorg_tui.engine.fields import a_count, a_time, parse_json
from reorg_tui.engine.inputfile import read_regular
from reorg_tui.engine.ledger import Ledger
from reorg_tui.engine.naming import NotTaken
from reorg_tui.engine.records import RetryEntry

log = logging.getLogger(__name__)
MAX_ERRORS_KEPT = 50
LEGACY_NAME = "retry.json"  # the queue as versions before the ledger kept it
MAX_LEGACY_BYTES = 256 * 1024 * 1024
__all__ = ["MAX_ERRORS_KEPT", "RetryEntry", "RetryQueue", "backoff", "stamped"]


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


class RetryQueue:
    """Files waiting for another try. Not thread-safe: Failures (failures.py) holds its lock
    around it. Without a ledger it lives in memory only (``save`` and ``load`` do nothing).

    When a file is due is kept on the monotonic clock (a wall clock stepped back an hour does not
    hold a retry for an hour); each entry's ``next_try`` on the wall clock too, for the faces and
    for the ledger, from which ``load`` turns it back into a wait from now."""

    def __init__(self, ledger: Ledger | None = None, *, legacy: Path | None = None) -> None:
        self.ledger = ledger
        self.legacy = legacy  # a retry.json to import once, if there is one
        self.entries: dict[str, RetryEntry] = {}
        self._heap: list[tuple[float, str]] = []  # (due, path), monotonic
        self._due: dict[str, float] = {}  # path -> when it is due (monotonic); absent in flight
        self._changed: set[str] = set()  # paths scheduled or forgotten since the last save
        self._loaded_at = Now(0.0, 0.0)  # the instant ``load`` counts saved times from
        self._longest = float("inf")  # the longest a loaded entry may wait (``load``)

    @property
    def dirty(self) -> bool:
        return bool(self._changed)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, rel: str) -> bool:
        return rel in self.entries

    def schedule(self, rel: str, attempts: int, delay: float, error: str, now: Now) -> RetryEntry:
        entry = self.entries.get(rel)
        if entry is None:
            entry = RetryEntry(rel, attempts, now.wall + delay, error, [], now.wall)
            self.entries[rel] = entry
        entry.attempts = attempts
        entry.next_try = now.wall + delay
        entry.last_error = error
        entry.errors = (entry.errors + [stamped(error, now.wall)])[-MAX_ERRORS_KEPT:]
        self._push(rel, now.mono + delay)
        self._changed.add(rel)
        return entry

    def attempts(self, rel: str) -> int:
        entry = self.entries.get(rel)
        return entry.attempts if entry else 0

    def errors(self, rel: str) -> list[str]:
        entry = self.entries.get(rel)
        return list(entry.errors) if entry else []

    def forget(self, rel: str) -> None:
        self._due.pop(rel, None)
        if self.entries.pop(rel, None) is not None:
            self._changed.add(rel)

    def _push(self, rel: str, due: float) -> None:
        self._due[rel] = due
        heapq.heappush(self._heap, (due, rel))

    def pop_due(self, now: Now, limit: int) -> list[str]:
        """Paths whose next try has come, at most ``limit``; they stay known until forgotten."""
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now.mono and len(due) < limit:
            when, rel = heapq.heappop(self._heap)
            entry = self.entries.get(rel)
            if entry is not None and self._due.get(rel) == when:
                del self._due[rel]
                entry.next_try = None
                due.append(rel)
        return due

    def next_due(self) -> float | None:
        """When the soonest file is due (monotonic), if any is waiting."""
        while self._heap:
            when, rel = self._heap[0]
            if rel in self.entries and self._due.get(rel) == when:
                return when
            heapq.heappop(self._heap)
        return None

    def head(self, limit: int) -> list[RetryEntry]:
        """The entries due soonest, for the snapshot; files in flight come last."""
        waiting = heapq.nsmallest(limit, self.entries.values(), key=_due_order)
        return [RetryEntry(**asdict(e)) for e in waiting]

    def save(self) -> None:
        """Write what changed since the last save, in one transaction. Raises LedgerError (the
        changes stay pending, for the next save)."""
        if self.ledger is None or not self._changed:
            return
        changed = [self.entries[rel] for rel in self._changed if rel in self.entries]
        removed = [rel for rel in self._changed if rel not in self.entries]
        self.ledger.save_retries(changed, removed)
        self._changed.clear()

    def load(self, now: Now | None = None, longest: float = float("inf")) -> int:
        """Restore the queue an earlier run saved; returns how many files wait (each due as long
        from ``now`` as its saved ``next_try`` lies ahead of the wall clock). A row of the wrong
        shape is set aside by the ledger, with a warning; never fatal. No entry waits longer
        than ``longest`` (today's --retry-max-delay): a time far ahead, saved under other
        settings or planted, never holds a file, nor --once, for ever."""
        self._longest = longest
        if self.ledger is None:
            return 0
        self._loaded_at = now or Now(time.time(), time.monotonic())
        entries, set_aside = self.ledger.load_retries()
        for line in set_aside:
            log.warning("retry queue: %s", line)
        for entry in entries:
            self._take(entry, "in the ledger", in_ledger=True)
        if self.legacy is not None and self.legacy.exists():
            self._import(self.legacy)
        self.save()  # what was dropped leaves the ledger; what was imported enters it
        return len(self.entries)

    def drop_not_taken(self, not_taken: Callable[[str], NotTaken | None]) -> list[tuple[str, NotTaken]]:
        """Drop (and return, with the reason) the entries for files that ``not_taken`` says the
        settings of this run do not take: queued under other settings, or planted, they stay in
        the source. Saved at once (a LedgerError is for the caller)."""
        dropped = [(rel, why) for rel in list(self.entries) if (why := not_taken(rel)) is not None]
        for rel, _why in dropped:
            self.forget(rel)
        self.save()
        return dropped

    def _import(self, path: Path) -> None:
        """Take the entries of a retry.json once: into the ledger, then the file renamed aside
        (kept for the operator). A file that cannot be read is set aside as ``retry.corrupt``."""
        try:
            raw = parse_json(read_regular(path, MAX_LEGACY_BYTES))  # UnfitFile is an OSError
            loaded = [RetryEntry(**item) for item in raw["entries"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = path.with_suffix(".corrupt")
            log.warning("retry queue %s is unreadable (%s); set aside as %s", path, exc, aside)
            os.replace(path, aside)
            return
        taken = 0
        for entry in loaded:
            if self._take(entry, str(path), in_ledger=False):
                self._changed.add(entry.path)
                taken += 1
        self.save()  # durable in the ledger before the file goes: a crash here imports it again
        done = path.with_name(path.name + ".imported")
        os.replace(path, done)
        log.info("imported %d file(s) waiting for a retry from %s; the file is kept as %s", taken, path, done)

    def _take(self, entry: RetryEntry, where: str, *, in_ledger: bool) -> bool:
        """Add a loaded entry if it is one this version could have written; else drop it, with
        a warning (a row of the ledger leaves it at the next save)."""
        problem = _bad_field(entry)
        if problem is not None:
            if problem == "path":
                log.warning("retry queue %s: ignored an entry with a bad path %r", where, entry.path)
            else:
                value = getattr(entry, problem)
                log.warning(
                    "retry queue %s: dropped the entry for %r: bad %s %r", where, entry.path, problem, value
                )
            if in_ledger and isinstance(entry.path, str):
                self._changed.add(entry.path)
            return False
        if entry.next_try is None:
            entry.next_try = 0.0  # no time (in flight when saved): due at once, as 0.0 is
        entry.next_try = float(entry.next_try)
        self.entries[entry.path] = entry
        now = self._loaded_at
        self._push(entry.path, now.mono + min(max(0.0, entry.next_try - now.wall), self._longest))
        return True


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


def _bad_field(entry: RetryEntry) -> str | None:
    """The first field of ``entry`` that is not what this version writes, or None."""
    if not _plain_relative(entry.path):
        return "path"
    if not a_count(entry.attempts):
        return "attempts"
    if entry.next_try is not None and not a_time(entry.next_try):
        return "next_try"
    if not isinstance(entry.last_error, str):
        return "last_error"
    if not isinstance(entry.errors, list) or not all(isinstance(e, str) for e in entry.errors):
        return "errors"
    if not a_time(entry.first_failed):
        return "first_failed"
    return None
