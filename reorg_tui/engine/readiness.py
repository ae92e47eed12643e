"""When a file is ready to move, and which files not to try again.

A file is ready once its size and mtime have held still for the settle time, checked by looking
again; a file whose mtime is already older than that is ready when it is first seen. Events are
no proof of completeness (a writer may close and reopen its file), so only this clock decides.

Two clocks, each for what it can answer. The file's mtime against the wall clock says how old
the file is: whether it is older than the settle time when first seen, and, for a change seen at
a look, when in the interval since the previous look it happened. How long a file has held still
since is counted on the monotonic clock: a wall clock stepped back an hour (an NTP correction, a
VM resumed) does not hold a file for an hour, nor does one stepped forward move it early.

A file left in the source by the ``skip`` collision policy is not tried again while it is the
same file (inode, size, mtime); it is forgotten once a full scan no longer finds it.

Not thread-safe: Intake (intake.py) calls it under its lock.
"""

from __future__ import annotations

import heapq
import itertools
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from reorg_tui.engine.clocks import Now

Identity = tuple[int, int, int]  # inode, size, mtime_ns
__all__ = ["Identity", "Now", "Readiness"]


@dataclass
class _Settling:
    size: int
    mtime_ns: int
    since: float  # when it was last seen to change (monotonic)
    due: float  # when to look again (monotonic)
    looked: float  # when it was last looked at (monotonic)
    seen: float  # when it was first seen (wall clock): how long it has waited, for the faces

    def saw(self, st: os.stat_result, now: Now) -> bool:
        """Record what a look found; True if the file had changed since the last look."""
        previous, self.looked = self.looked, now.mono
        if (self.size, self.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return False
        # It changed after the previous look: when, its mtime says, within that interval.
        self.size, self.mtime_ns = st.st_size, st.st_mtime_ns
        self.since = now.mono - min(_age(st, now), now.mono - previous)
        return True


def _age(st: os.stat_result, now: Now) -> float:
    """How long ago the file was last written, by its mtime: never less than nothing (a clock
    ahead of ours, on a network filesystem; our wall clock stepped back)."""
    return max(0.0, now.wall - st.st_mtime)


def _identity(st: os.stat_result) -> Identity:
    return st.st_ino, st.st_size, st.st_mtime_ns


class Readiness:
    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._settling: dict[str, _Settling] = {}
        self._heap: list[tuple[float, str]] = []
        self._skipped: dict[str, tuple[Identity, int]] = {}  # -> (identity, scan count when skipped)

    def __len__(self) -> int:
        """How many files are settling."""
        return len(self._settling)

    def next_due(self) -> float | None:
        """When the next settling file comes due (monotonic), if any."""
        return self._heap[0][0] if self._heap else None

    def offer(self, rel: str, st: os.stat_result, now: Now) -> bool:
        """A regular file was seen. True if it is ready now; otherwise it settles (or, if it was
        already settling and has changed, its clock starts again)."""
        skipped = self._skipped.get(rel)
        if skipped is not None:
            if skipped[0] == _identity(st):
                return False
            del self._skipped[rel]  # a different file under that name now: a new candidate
        waiting = self._settling.get(rel)
        if waiting is None:
            if now.wall - st.st_mtime >= self.settle:
                return True
            # Still since its last write (a file seen first when it was created empty and then
            # written must not wait a second settle time from when we happened to look).
            since = now.mono - _age(st, now)
            due = since + self.settle
            self._settling[rel] = _Settling(st.st_size, st.st_mtime_ns, since, due, now.mono, now.wall)
            heapq.heappush(self._heap, (due, rel))
        else:
            waiting.saw(st, now)
        return False

    def drop(self, rel: str) -> None:
        self._settling.pop(rel, None)

    def longest(self, count: int, now: Now) -> list[tuple[float, str, float]]:
        """The ``count`` files settling longest: (first seen, wall clock; path; seconds held
        still now). The first ``count`` of the settling files: they are kept in the order they
        were first seen (a file joins at the end, and leaves once it is due), so this costs the
        same with 10 or 100,000 settling (a dashboard asks four times a second, on its UI thread)."""
        oldest = itertools.islice(self._settling.items(), count)
        return [(s.seen, rel, max(0.0, now.mono - s.since)) for rel, s in oldest]

    def take_due(self, now: Now, lstat: Callable[[str], os.stat_result]) -> list[tuple[str, os.stat_result]]:
        """The settling files that have now held still long enough, with their fresh lstat.
        Files that vanished or stopped being regular files are forgotten."""
        ready = []
        while self._heap and self._heap[0][0] <= now.mono:
            due, rel = heapq.heappop(self._heap)
            waiting = self._settling.get(rel)
            if waiting is None or waiting.due != due:
                continue  # stale heap entry
            try:
                st = lstat(rel)
            except OSError:
                del self._settling[rel]
                continue
            if not stat.S_ISREG(st.st_mode):
                del self._settling[rel]
                continue
            # Ready once still for the settle time, counted from the last change (a change seen
            # only now may still lie far enough back, by the file's mtime).
            waiting.saw(st, now)
            if now.mono - waiting.since >= self.settle - 1e-6:
                del self._settling[rel]
                ready.append((rel, st))
                continue
            waiting.due = waiting.since + self.settle
            heapq.heappush(self._heap, (waiting.due, rel))
        return ready

    def skip(self, rel: str, st: os.stat_result, scan: int) -> None:
        """Remember that ``rel`` was left in place on purpose during scan number ``scan``."""
        self._skipped[rel] = (_identity(st), scan)

    def is_skipped(self, rel: str) -> bool:
        return rel in self._skipped

    def forget_skips(self, before_scan: int, seen: set[str]) -> None:
        """After a full scan: forget skipped files it no longer found (remembered before it)."""
        gone = [rel for rel, (_, scan) in self._skipped.items() if scan < before_scan and rel not in seen]
        for rel in gone:
            del self._skipped[rel]
