"""The engine's long-lived threads, and what happens when one of them dies.

The scanner, the housekeeper, the control server and the rename journal's writer each run a
loop for the whole run. One that ends on an exception would leave the process looking alive
(publishing nothing new, moving nothing, or answering no one) while a supervisor sees a running
process. So each runs under ``Vitals.thread``: an exception that escapes its loop is logged as
one line, recorded (``death``: the snapshot shows it, and ``status`` reports the instance down),
and the run is stopped: ``Engine.run`` drains and raises ``ThreadDied``, which the headless face
turns into exit code 70 (a supervisor restarts it).

Threads: ``thread`` is called by the thread that runs the engine; ``died`` by the dying thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from reorg_tui.engine.errors import ExitCode, ReorgError

log = logging.getLogger(__name__)

ROLES = {
    "reorg-scan": "the scanner",
    "reorg-housekeeping": "the housekeeper",
    "reorg-control": "the control server",
    "reorg-journal": "the rename journal",
}


@dataclass(frozen=True)
class Death:
    """A thread of the engine that ended on an exception."""

    thread: str
    error: str

    def __str__(self) -> str:
        return f"{ROLES.get(self.thread, self.thread)} thread ({self.thread}) died: {self.error}"


class ThreadDied(ReorgError):
    """A thread of the engine died: the run was stopped (exit code 70, a bug to report)."""

    exit_code = ExitCode.INTERNAL

    def __init__(self, death: Death) -> None:
        self.death = death
        super().__init__(f"stopped: {death}")


class Vitals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.death: Death | None = None  # the first thread to die; read by any thread
        self._on_death: list[Callable[[], object]] = []

    def when_one_dies(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (on the dying thread) when a thread dies: the engine stops its run."""
        self._on_death.append(callback)

    def thread(
        self, target: Callable[..., object], name: str, args: tuple[object, ...] = ()
    ) -> threading.Thread:
        """A daemon thread running ``target`` whose death ends the run (not started)."""

        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # noqa: BLE001 - whatever ends the loop ends the run
                self.died(name, exc)

        return threading.Thread(target=run, name=name, daemon=True)

    def died(self, name: str, exc: BaseException) -> None:
        with self._lock:
            if self.death is not None:
                return  # the first one says why; the others follow from the stop
            self.death = Death(name, f"{type(exc).__name__}: {exc}".splitlines()[0])
        log.critical("%s; stopping (exit code 70)", self.death, extra={"event": "thread_died", "fields": {}})
        for callback in self._on_death:
            callback()
