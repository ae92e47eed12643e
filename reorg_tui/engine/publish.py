"""The running instance's state for other processes: ``status``, and dashboards that attach.

About once a second the snapshot and the latest events are written to ``STATE/snapshot.json``,
atomically (a reader sees a whole file, old or new).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reorg_tui.engine import events as ev
from reorg_tui.engine.inputfile import read_regular
from reorg_tui.engine.metrics import Snapshot
from reorg_tui.engine.store import write_atomic

STATE_FILE = "snapshot.json"
KEEP_EVENTS = 200
MAX_STATE_BYTES = 64 * 1024 * 1024  # a snapshot and its 200 events are some kilobytes


def event_to_dict(event: ev.Event) -> dict[str, Any]:
    return {"kind": event.kind, **asdict(event)}


def event_from_dict(data: dict[str, Any]) -> ev.Event | None:
    cls = ev.BY_KIND.get(data.get("kind", ""))
    if cls is None:
        return None
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return cls(**fields)
    except TypeError:
        return None


class Publisher:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATE_FILE
        self._events: deque[ev.Event] = deque(maxlen=KEEP_EVENTS)
        self._lock = threading.Lock()

    def on_events(self, events: list[ev.Event]) -> None:
        with self._lock:
            self._events.extend(events)

    def publish(self, snap: Snapshot) -> None:
        with self._lock:
            events = [event_to_dict(e) for e in self._events]
        data = {
            "version": 1,
            "pid": os.getpid(),
            "published_at": time.time(),
            "snapshot": snap.to_dict(),
            "events": events,
        }
        # No fsync: after a crash a stale or missing status file is the truth anyway.
        write_atomic(self.path, json.dumps(data).encode(), durable=False)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The last published state, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(read_regular(state_dir / STATE_FILE, MAX_STATE_BYTES))
    except (OSError, ValueError):  # UnfitFile (a FIFO, a device, too large) is an OSError
        return None
    return data if isinstance(data, dict) and "snapshot" in data else None
