"""The one module that knows both the engine and the dashboard: what the app asks of an engine.

The app talks to a ``Host``. ``EngineHost`` wraps a real Engine; ``FrozenHost`` (in sample.py)
holds a fixed state for snapshot tests and screenshots.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from reorg_tui.engine import events as ev
from reorg_tui.engine.engine import Engine
from reorg_tui.engine.metrics import Snapshot
from reorg_tui.engine.quarantine import Record

MAX_EVENTS = 500  # kept between two refreshes; under a flood the oldest are dropped, not queued


class Host(Protocol):
    live: bool

    def run(self, stop: threading.Event) -> None: ...
    def snapshot(self) -> Snapshot: ...
    def drain_events(self) -> list[ev.Event]: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def quarantine_list(self) -> list[Record]: ...
    def release(self, item_id: str) -> str: ...
    def delete(self, item_id: str) -> Record: ...


class EngineHost:
    """A real engine. Its threads only append to a bounded buffer: never a message per file."""

    live = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._events: deque[ev.Event] = deque(maxlen=MAX_EVENTS)
        self._lock = threading.Lock()
        engine.subscribe(self._collect)

    def _collect(self, event: ev.Event) -> None:
        with self._lock:
            self._events.append(event)

    def drain_events(self) -> list[ev.Event]:
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    def run(self, stop: threading.Event) -> None:
        self.engine.run(stop)

    def snapshot(self) -> Snapshot:
        return self.engine.snapshot()

    def pause(self) -> None:
        self.engine.pause()

    def resume(self) -> None:
        self.engine.resume()

    def quarantine_list(self) -> list[Record]:
        return self.engine.quarantine_list()

    def release(self, item_id: str) -> str:
        return self.engine.release(item_id)

    def delete(self, item_id: str) -> Record:
        return self.engine.delete(item_id)
