"""How many folder descriptors each cache may keep open, from the process's real open-file limit.

A daemon that caches one descriptor per folder in use (a year of date folders is 378) must still
leave room for everything else it opens: its ledger, its lock, the watcher, the copies in flight.
Under a low limit (``ulimit -n 64``) caches sized for the default would take every descriptor,
and every file would fail with EMFILE. The budget below leaves a fixed reserve and a share per
worker, and splits what is left between the caches. Running out all the same (another process's
limit on the system, ENFILE) is a wait, handled by the failures stage, never a failed attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from reorg_tui.engine.dirs import raise_open_file_limit
from reorg_tui.engine.errors import ReorgError

# Held by the process whatever it moves, measured on an idle daemon (13) with room to spare: the
# standard streams, the ledger (database, WAL, shared memory), the source lock, the control
# socket, the watcher's inotify, the log and the snapshot being written, a scan's two folders.
RESERVED = 24
# Below this limit not even one copy at a time is sure to find its descriptors: refused at start
# (measured: under 18 a daemon with 4 workers copying spun on EMFILE without moving a file).
MINIMUM = RESERVED
# A copy in flight: its source file, its staging file, a folder opened below a cached one, and
# a quarantine record being written.
PER_WORKER = 4


class TooFewDescriptors(ReorgError):
    """The open-file limit is too low to move files at all (exit code 2: fix the settings)."""


@dataclass(frozen=True)
class DescriptorBudget:
    limit: int  # the soft RLIMIT_NOFILE, once raised as far as the hard limit allows
    dest_folders: int  # the destination tree's cache
    source_folders: int  # the source tree's cache
    quarantine_folders: int  # the quarantine tree's cache
    held_per_lane: int  # source folders a rename lane keeps lent for its batch

    @classmethod
    def for_limit(cls, limit: int, workers: int) -> DescriptorBudget:
        spare = max(0, limit - RESERVED - max(1, workers) * PER_WORKER)
        return cls(
            limit=limit,
            dest_folders=_within(spare // 2, 4, 4096),
            source_folders=_within(spare // 4, 2, 1024),
            quarantine_folders=_within(spare // 8, 2, 16),
            held_per_lane=_within(spare // (8 * max(1, workers)), 1, 16),
        )

    @classmethod
    def of_this_process(cls, workers: int) -> DescriptorBudget:
        """This process's budget, its soft limit raised first; TooFewDescriptors under MINIMUM."""
        limit = raise_open_file_limit()
        if limit < MINIMUM:
            raise TooFewDescriptors(
                f"the open-file limit is {limit}, below the {MINIMUM} this daemon needs to move "
                "files: raise it (ulimit -n, LimitNOFILE= in a systemd unit, minfds in supervisord)"
            )
        return cls.for_limit(limit, workers)


def _within(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
