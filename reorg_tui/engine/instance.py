"""This process's claim on its source (or, with --shard, its share of it), and what it shows
other processes: the source's, its path's and the state folder's locks (a state folder another
user could write is refused: lock.py, statedir.py) and where it is (locate.py), the control
socket (pause, resume, ping, release, delete), the published snapshot, and the identity of every
root (roots.py).

Used as ``with Instance(...):`` around a run. Threads: the caller of ``Engine.run`` enters and
leaves it; the housekeeper publishes; the control server answers on a thread of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from reorg_tui.engine.bus import EventBus
from reorg_tui.engine.control import ControlServer, Handler
from reorg_tui.engine.locate import forget_state_dir, record_state_dir
from reorg_tui.engine.lock import SourceLock
from reorg_tui.engine.metrics import Snapshot
from reorg_tui.engine.publish import Publisher
from reorg_tui.engine.roots import Roots, take
from reorg_tui.engine.settings import EngineSettings
from reorg_tui.engine.vital import Vitals

log = logging.getLogger(__name__)


class Instance:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        bus: EventBus,
        snapshot: Callable[[], Snapshot],
        handlers: dict[str, Handler],
        vitals: Vitals,
    ) -> None:
        self.source = settings.source
        self.state_dir = settings.state_dir
        self.bus = bus
        self.snapshot = snapshot
        self.shard = settings.shard
        # A fleet's instances share the source (each with its state folder): a shared lock, which
        # a single-host instance's exclusive one still refuses, and the other way round.
        self.lock = SourceLock(
            settings.source, settings.state_dir, settings.shard, shared=bool(settings.coordinator)
        )
        self.publisher = Publisher(settings.state_dir, settings.shard)
        self.control = ControlServer(settings.state_dir, handlers, vitals)
        self.roots = Roots()

    def __enter__(self) -> Instance:
        """Raises AlreadyRunning if another instance holds the source or the state folder, and
        UntrustedStateDir if the state folder could be written by another user (lock.py)."""
        self.lock.acquire()
        try:
            self.roots.hold(take("source", str(self.source), self.lock.held))
            self.roots.hold(take("state folder", str(self.state_dir)))
            self.publish()  # "starting", at once: `status` never calls a start-up that holds the source down
            self.bus.subscribe(self.publisher.on_events)
            warnings = (
                self.lock.warning,
                record_state_dir(self.source, self.state_dir, self.shard),
                self.control.start(),
            )
            for warning in warnings:
                if warning:
                    self.bus.warn(warning)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        state_lost = self.roots.lost("state folder")  # then nothing is written or removed there
        try:
            self.control.stop(unlink=not state_lost)
            self.publish()
            forget_state_dir(self.source, self.state_dir, self.shard)
        finally:
            self.lock.keep_info = state_lost
            self.lock.release()

    def publish(self) -> None:
        if self.roots.lost("state folder"):
            return  # the folder at that path now is not ours: nothing is written into it
        try:
            self.publisher.publish(self.snapshot(), self.roots.to_list())
        except OSError as exc:
            log.warning("cannot publish state to %s: %s", self.publisher.path, exc)
