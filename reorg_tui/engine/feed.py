"""Where ready files come from: this host's own listing (``LocalFeed``), or a fleet's shared queue
(``fleet.Fleet``, with ``--coordinator``). The engine's stages call the one ``Feed`` they are
given at the points where the two differ, and nowhere else:

- intake's scanner asks ``lists()`` before each listing (a fleet lists on one instance only);
- intake hands each settled file to ``offer`` (queued here, or published to the fleet);
- the coordinator's round calls ``round`` (a fleet publishes what was offered, and claims work);
- a batch asks ``confirm`` which of its files may move, and reports to ``finish`` what became
  of them (a fleet records each outcome under its claim's fence);
- the housekeeper calls ``tick`` once a second (a fleet's heartbeat and published snapshot).

``LocalFeed`` is the single-host daemon exactly as it was: it lists, queues what settles here,
and every other call does nothing. The fleet's module (and psycopg) is imported only when a
coordinator is named.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from reorg_tui.engine.kinds import Ready
from reorg_tui.engine.metrics import FleetView

if TYPE_CHECKING:
    import threading

    from reorg_tui.engine.batch import BatchResult
    from reorg_tui.engine.bus import EventBus
    from reorg_tui.engine.intake import Intake
    from reorg_tui.engine.metrics import Snapshot
    from reorg_tui.engine.settings import EngineSettings


class Feed(Protocol):
    down: str | None  # why intake is paused for the feed (a coordinator not reachable), or None

    def open(self, stop: threading.Event) -> None:
        """At start-up, once the source is held (a fleet connects, and checks its settings)."""

    def lists(self) -> bool:
        """Whether this instance lists the source now. The scanner's thread, before each listing."""

    def offer(self, rel: str, st: os.stat_result) -> bool:
        """A file that settled: True to queue it here. Intake's lock held: must not block."""

    def round(self, may_claim: bool) -> None:
        """The coordinator's thread, each round: ``may_claim`` unless paused (operator, disk)."""

    def confirm(self, batch: list[Ready]) -> list[Ready]:
        """Of a batch about to move, the files that may (on the batch's thread)."""

    def finish(self, result: BatchResult, moving: list[Ready]) -> None:
        """What became of a batch's files (``moving``: those ``confirm`` let through)."""

    def tick(self) -> None:
        """The housekeeper's thread, once a second."""

    def view(self) -> FleetView | None:
        """What the snapshot shows of the feed (None: a single host)."""

    def close(self) -> None:
        """At shutdown, once no batch runs: a fleet hands back what it claimed and did not move."""


class LocalFeed:
    """The single host: it lists its source itself and queues every file that settles."""

    down: str | None = None

    def open(self, stop: threading.Event) -> None:
        pass

    def lists(self) -> bool:
        return True

    def offer(self, rel: str, st: os.stat_result) -> bool:
        return True

    def round(self, may_claim: bool) -> None:
        pass

    def confirm(self, batch: list[Ready]) -> list[Ready]:
        return batch

    def finish(self, result: BatchResult, moving: list[Ready]) -> None:
        pass

    def tick(self) -> None:
        pass

    def view(self) -> FleetView | None:
        return None

    def close(self) -> None:
        pass


def feed_for(
    settings: EngineSettings,
    *,
    intake: Intake,
    bus: EventBus,
    snapshot: Callable[[], Snapshot],
    forget: Callable[[str], None],
    retrying: Callable[[str], bool],
    wake: threading.Event,
) -> Feed:
    """The feed ``settings`` ask for: the fleet's with a coordinator, else this host's own."""
    if not settings.coordinator:
        return LocalFeed()
    from reorg_tui.engine.fleet import Fleet

    return Fleet(
        settings, intake=intake, bus=bus, snapshot=snapshot, forget=forget, retrying=retrying, wake=wake
    )
