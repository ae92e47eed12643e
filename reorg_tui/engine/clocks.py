"""The two clocks the engine reads, each for what it can answer.

The wall clock (``time.time``) says what time of day it is: what a file's mtime is compared
with, what records and faces show, what survives a restart. The monotonic clock
(``time.monotonic``) says how long something took or has lasted: how long a file has held still,
how long until a retry. A wall clock stepped back or forward (an NTP correction, a VM resumed
from a snapshot) moves only the first: a wait counted on the second is never an hour late.
Both are injectable where the engine is built (``Engine(clock=..., monotonic=...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Now(NamedTuple):
    """One instant on both clocks."""

    wall: float
    mono: float


def now_of(clock: Callable[[], float], monotonic: Callable[[], float]) -> Now:
    return Now(clock(), monotonic())
