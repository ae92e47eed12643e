"""The event bus: events go to subscribers in the order they happened, a batch at a time.

Any thread may emit. A thread moving a batch holds its events (``with bus.holding():``) and hands
them over once per batch, or every ``EVENT_HOLD`` seconds of a slow one: under a backlog one
hand-over per file (a log line, a dashboard row, a published event each) would be most of the
per-file work outside the system calls.

State: the subscriber list (appended to before ``Engine.run`` starts its threads, then only read)
and one thread-local list of held events per thread; no lock is needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from reorg_tui.engine import events as ev

log = logging.getLogger(__name__)
Subscriber = Callable[[list[ev.Event]], None]
EVENT_HOLD = 0.1  # seconds: a thread in a batch hands its events over at least this often


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._held = threading.local()

    def subscribe(self, callback: Subscriber) -> None:
        """Called from engine threads with events in the order they happened, several at a time
        under load (a worker hands over what one batch did): keep it quick, never touch a UI."""
        self._subscribers.append(callback)

    def emit(self, event: ev.Event) -> None:
        held = getattr(self._held, "events", None)
        if held is not None:  # a thread in a batch: handed over with the rest of it
            held.append(event)
        else:
            self._deliver([event])

    def warn(self, message: str) -> None:
        self.emit(ev.Warning(message))

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold this thread's events until the block ends (or ``hand_over`` is called)."""
        self._held.events = []
        try:
            yield
        finally:
            self.hand_over()
            self._held.events = None

    def hand_over(self) -> None:
        """Deliver the events this thread holds, and go on holding."""
        held = self._held.events
        if held:
            self._held.events = []
            self._deliver(held)

    def _deliver(self, events: list[ev.Event]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(events)
            except Exception:  # a face's bug must not stop the engine
                log.exception("event subscriber failed")
