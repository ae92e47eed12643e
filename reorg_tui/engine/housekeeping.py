"""The housekeeper: a thread that does the once-a-second chores off the coordinator (a folder
fsync can take milliseconds each, and moves must not wait for them).

It owns no state: each chore belongs to its stage and takes that stage's lock. A chore that fails
is logged, and the others, and the next round, go on. The thread itself is vital (vital.py): were
its loop to end on an exception, the run stops rather than go on unpublished and unsynced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from reorg_tui.engine import steps
from reorg_tui.engine.vital import Vitals

log = logging.getLogger(__name__)


class Housekeeper:
    def __init__(
        self,
        chores: Sequence[Callable[[], object]],
        stopping: threading.Event,
        vitals: Vitals,
        every: float = 1.0,
    ):
        self.chores = chores
        self._stopping = stopping
        self._every = every
        self._thread = vitals.thread(self._run, "reorg-housekeeping")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            steps.reached("housekeeping")
            for chore in self.chores:
                try:
                    chore()
                except Exception:  # housekeeping must go on; the next round tries again
                    log.exception("housekeeping failed")
