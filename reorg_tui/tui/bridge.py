"""The one module that knows both the engine and the dashboard: what the app asks of an engine.

The app talks to a ``Host``. ``EngineHost`` wraps a real Engine; ``FrozenHost`` (in sample.py)
holds a fixed state for snapshot tests and screenshots.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from reorg_tui.config import Settings
from reorg_tui.engine import (
    WINDOWS,
    Disk,
    Engine,
    QuarantineInfo,
    QuarantineOps,
    QuarantineReader,
    Queues,
    ReadOnlyQuarantine,
    Record,
    ReorgError,
    Snapshot,
    State,
    Timing,
    Totals,
    open_store,
)
from reorg_tui.engine import events as ev
from reorg_tui.engine.control import request
from reorg_tui.engine.ledger import Query, Transfer
from reorg_tui.engine.publish import Unpublished, read_published
from reorg_tui.engine.store import pid_alive
from reorg_tui.history import read as read_history
from reorg_tui.status import STALE_AFTER

MAX_EVENTS = 500  # kept between two refreshes; under a flood the oldest are dropped, not queued
POLL_SECONDS = 0.5  # how often an attached dashboard reads the running instance's state


class Host(Protocol):
    live: bool

    def run(self, stop: threading.Event) -> None: ...
    def snapshot(self) -> Snapshot: ...
    def drain_events(self) -> list[ev.Event]: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def quarantine_list(self) -> list[Record]:
        """The browser's rows: every quarantined file, error histories left out."""

    def quarantine_record(self, item_id: str) -> Record:
        """One file's whole record (its details); a ReorgError if it is gone."""

    def release(self, item_id: str) -> str: ...
    def delete(self, item_id: str) -> Record: ...
    def history(self, query: Query) -> list[Transfer]: ...


class EngineHost:
    """A real engine. Its threads only append to a bounded buffer: never a message per file."""

    live = True

    def __init__(self, engine: Engine, started: Callable[[], object] | None = None) -> None:
        self.engine = engine
        self.started = started  # called once the engine holds the source (see Engine.run)
        self._events: deque[ev.Event] = deque(maxlen=MAX_EVENTS)
        self._lock = threading.Lock()
        engine.subscribe(self._collect)

    def _collect(self, events: list[ev.Event]) -> None:
        with self._lock:
            self._events.extend(events)

    def drain_events(self) -> list[ev.Event]:
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    def run(self, stop: threading.Event) -> None:
        self.engine.run(stop, started=self.started)

    def snapshot(self) -> Snapshot:
        return self.engine.snapshot()

    def pause(self) -> None:
        self.engine.pause()

    def resume(self) -> None:
        self.engine.resume()

    def quarantine_list(self) -> list[Record]:
        return self.engine.quarantine_list(errors=False)

    def quarantine_record(self, item_id: str) -> Record:
        return self.engine.quarantine_record(item_id)

    def release(self, item_id: str) -> str:
        return self.engine.release(item_id)

    def delete(self, item_id: str) -> Record:
        return self.engine.delete(item_id)

    def history(self, query: Query) -> list[Transfer]:
        # Its own read-only look, not engine.ledger: that one's lock is the engine's, and a scan
        # of the history would hold up the batches' writes (a reader never blocks a WAL writer).
        return read_history(self.engine.settings.state_dir, query)


class ReadOnly(ReorgError):
    """A change asked of a read-only viewer."""


class AttachedHost:
    """Another process runs the engine (a daemon under supervisord, say): show what it publishes,
        and steer it through its control socket: pause, resume, and release or delete (which the
        daemon does itself, see engine/operations.py). Listing reads its quarantine directly, and the
    history its ledger (read-only).

        Everything that reads a file or a socket runs in the app's worker threads, never the UI's.
    """

    live = True

    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only  # a viewer (--read-only): it changes nothing, here or there
        self.quarantine: QuarantineReader
        self.ops: QuarantineOps | None = None
        if read_only:  # nothing opened for writing: the daemon's index, looked at read-only
            self.quarantine = ReadOnlyQuarantine(settings.quarantine, settings.state_dir)
        else:
            store = open_store(settings.quarantine, settings.state_dir)  # the daemon's index
            self.quarantine, self.ops = store, QuarantineOps(store, settings.source, settings.state_dir)
        self._snapshot = placeholder(settings, "attaching")
        self._events: deque[ev.Event] = deque(maxlen=MAX_EVENTS)
        self._published: set[ev.Event] = set()  # the events in the state file last read
        self._lock = threading.Lock()
        self.pid: int | None = None

    def run(self, stop: threading.Event) -> None:
        """Follow the published state until the dashboard quits; the daemon is never stopped."""
        while not stop.is_set():
            self.poll()
            stop.wait(POLL_SECONDS)

    def poll(self) -> None:
        data = read_published(self.settings.state_dir)
        if isinstance(data, Unpublished):
            return  # none yet, or not one this version wrote: the last one read stays shown
        snap, pid, published_at = data.snapshot, data.pid, data.published_at
        if not pid_alive(pid) or time.time() - published_at > STALE_AFTER:
            # Not running: its state as it last published it, and that time, so the uptime stops
            # there and the dashboard can say since when. poll() goes on: a new instance shows.
            snap = dataclasses.replace(snap, state=State.STOPPED, taken_at=published_at or snap.taken_at)
        # New are the events not in the file last time. Not "later than the latest seen": a worker
        # hands its batch's events over when the batch ends, so the file's order is not by time.
        published = list(data.events)
        fresh = [e for e in published if e not in self._published]
        with self._lock:
            self._snapshot, self.pid = snap, pid
            self._events.extend(fresh)
            self._published = set(published)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def drain_events(self) -> list[ev.Event]:
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    def pause(self) -> None:
        request(self.settings.state_dir, "pause", read_only=self._changing("pause"))
        self.poll()

    def resume(self) -> None:
        request(self.settings.state_dir, "resume", read_only=self._changing("resume"))
        self.poll()

    def quarantine_list(self) -> list[Record]:
        return self.quarantine.list(errors=False)

    def quarantine_record(self, item_id: str) -> Record:
        return self.quarantine.get(item_id)

    def release(self, item_id: str) -> str:
        return self._changer("release").release(item_id)

    def delete(self, item_id: str) -> Record:
        return self._changer("delete").delete(item_id)

    def _changer(self, what: str) -> QuarantineOps:
        self._changing(what)
        assert self.ops is not None  # (made for any host that is not read-only)
        return self.ops

    def _changing(self, what: str) -> bool:
        """Refuse a change asked of a read-only viewer (its keys are gone; this is the floor)."""
        if self.read_only:
            raise ReadOnly(f"{what} refused: this dashboard is read-only (--read-only)")
        return False

    def history(self, query: Query) -> list[Transfer]:
        return read_history(self.settings.state_dir, query)  # the daemon's ledger, read-only


def placeholder(settings: Settings, state: str) -> Snapshot:
    """An empty snapshot, shown until the first real one arrives."""
    now = time.time()
    return Snapshot(
        taken_at=now,
        state=state,
        pause_reason=None,
        source=str(settings.source),
        dest=str(settings.dest),
        quarantine_dir=str(settings.quarantine),
        watcher="-",
        started_at=now,
        workers_total=settings.workers,
        workers_busy=0,
        totals=Totals(),
        files_per_second=dict.fromkeys(WINDOWS, 0.0),
        bytes_per_second=dict.fromkeys(WINDOWS, 0.0),
        error_rate=0.0,
        timing=Timing(),
        queues=Queues(),
        retry_head=(),
        disk=Disk(min_free_percent=settings.min_free_percent),
        quarantine=QuarantineInfo(),
        scans=0,
        last_scan_seconds=0.0,
    )
