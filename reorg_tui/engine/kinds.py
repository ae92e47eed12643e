"""The engine's named states and outcomes: one spelling each, shared by every module and face.

They are ``StrEnum`` members, so they compare equal to (and serialise as) the plain strings that
logs, ``snapshot.json``, ``status`` and Prometheus labels have always carried.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Literal, NamedTuple


class State(StrEnum):
    """What the engine as a whole is doing."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"  # by an operator
    PAUSED_DISK = "paused-disk"  # the destination is short of space (or was unmounted)
    PAUSED_COORDINATOR = "paused-coordinator"  # a fleet's database does not answer: nothing is claimed
    DRAINING = "draining"
    STOPPED = "stopped"


class Phase(StrEnum):
    """What start-up is doing, in order: published with State.STARTING, so that ``status`` can
    tell a start-up of a minute (a large quarantine to index) from an outage."""

    CLAIMING = "taking the source"  # its lock held: the control socket, where its state is
    LEDGER = "opening the ledger"
    COORDINATOR = "connecting to the coordinator"  # a fleet's: waits for its database to answer
    RECOVERING = "recovering interrupted transfers"
    CLEANING = "removing leftovers of an interrupted run"
    QUARANTINE = "checking the quarantine"
    RETRIES = "loading the retry queue"
    COUNTING = "counting the quarantine"
    DISK = "checking the destination's room"
    WATCHER = "starting the watcher"


class Kind(StrEnum):
    """What happened to one file in one attempt."""

    MOVED = "moved"  # renamed into place
    COPIED = "copied"  # copied across filesystems, then the source removed
    TWIN = "twin"  # a crash left it at its destination already: the source copy was removed
    DEDUPED = "deduped"  # the same bytes were already there (--on-conflict dedupe)
    SKIPPED = "skipped"  # left in the source, its name taken (--on-conflict skip)
    QUARANTINED = "quarantined"
    FAILED = "failed"  # to be retried, quarantined after it, or left in the source
    WAITING = "waiting"  # no room at the destination: it waits for the disk, and that is no attempt
    VANISHED = "vanished"  # someone else took it first
    CHANGED = "changed"  # written to during its copy: it settles again
    ABANDONED = "abandoned"  # a stop came first: it stays in the source, untouched


ARRIVED = frozenset({Kind.MOVED, Kind.COPIED, Kind.TWIN, Kind.DEDUPED})  # the file is at its destination

ConflictPolicy = Literal["rename", "skip", "dedupe", "quarantine"]
CONFLICT_POLICIES: tuple[ConflictPolicy, ...] = ("rename", "skip", "dedupe", "quarantine")

Ready = tuple[str, "os.stat_result | None"]
"""A file handed to a batch: its path below the source, and its lstat when found ready (or None:
look again, as for a retry). A plain tuple: this is made once per file on the hot path."""


class FileResult(NamedTuple):
    """One file's attempt, as the batch runner reports it (a NamedTuple: one per file, cheap)."""

    rel: str
    kind: Kind
    size: int = 0
    seconds: float = 0.0
    folder: str | None = None  # renamed: its folder below the destination, to be fsynced
    reason: str | None = None  # failed or quarantined: a short, bounded label for metrics (errors.py)
    at: float = 0.0  # arrived: when (wall clock, the time its Moved event carries)
