"""The named steps of the transfer protocol, where a crash test stops the process dead.

``REORG_STOP_AT=STEP`` (or ``STEP:N``, the Nth time it is reached) makes the process SIGKILL
itself the instant the protocol reaches that step: a crash lands exactly between two steps,
rather than wherever a random kill happens to find. ``STEP:N:pause`` SIGSTOPs it there instead
(a stalled daemon, resumed with SIGCONT); ``STEP:N:raise`` raises ``InjectedFault`` in the
thread that reached it (a thread of the engine that dies: vital.py); ``STEP:N:hang`` blocks that
one thread for good while the others go on (a thread stuck in the kernel on a dead mount, say).
In-process tests ``watch`` the steps with a function (a writer that strikes mid-copy). Read
once, at import; unset (always, outside the tests) every check is one test of ``armed``.

The steps, in order, for a copy: ``intent`` (its ledger row written), ``copied`` (bytes durable
in staging), ``staged`` (row at staged), ``published`` (renamed to its target), ``recorded``
(row at published), ``removed`` (source unlinked), then the row at done. For a rename:
``renamed`` (before its row is written). Recovery: ``recovering`` (before it acts on a row).
Start-up: ``starting`` (its first "starting" state published, before anything else is done).
The engine's long-lived threads, once a round: ``scanning`` (a listing of the source starts),
``housekeeping`` (the chores start), ``answering`` (a control connection is taken), and
``journaling`` (renames are handed to the ledger). A fleet's batch: ``claimed`` (its claims
confirmed, before it moves) and ``outcomes`` (moved, before the outcomes are recorded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

STEPS = (
    *("intent", "copied", "staged", "published", "recorded", "removed", "renamed", "recovering"),
    *("starting", "scanning", "housekeeping", "answering", "journaling", "claimed", "outcomes"),
)
HANG = "hang"  # the "signal" of STEP:N:hang: none, the thread waits for ever


class InjectedFault(RuntimeError):
    """Raised where ``REORG_STOP_AT=STEP:N:raise`` asked: a fault a test plants in a thread."""


def _parse(value: str | None) -> tuple[str, int, signal.Signals | str | None] | None:
    if not value:
        return None
    step, _, rest = value.partition(":")
    nth, _, how = rest.partition(":")
    if step not in STEPS:
        raise SystemExit(f"REORG_STOP_AT: unknown step {step!r} (known: {', '.join(STEPS)})")
    count = int(nth) if nth.isdigit() and int(nth) > 0 else 1
    return step, count, {"pause": signal.SIGSTOP, "raise": None, "hang": HANG}.get(how, signal.SIGKILL)


STOP_AT = _parse(os.environ.get("REORG_STOP_AT"))
_watchers: list[Callable[[str], None]] = []
armed = STOP_AT is not None  # anything to do at a step: the hot path tests only this
_seen: dict[str, int] = {}


def reached(step: str) -> None:
    """The protocol is at ``step``: stop dead here if a test asked for it."""
    if not armed:
        return
    for watcher in list(_watchers):
        watcher(step)
    if STOP_AT is None or STOP_AT[0] != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    if _seen[step] == STOP_AT[1]:
        if STOP_AT[2] is None:
            raise InjectedFault(f"a fault injected at {step} (REORG_STOP_AT)")
        how = STOP_AT[2]
        if not isinstance(how, signal.Signals):  # HANG
            threading.Event().wait()
            return
        # To this thread: it stops (or dies) before it returns from the call, not a moment later
        # (a signal to the process may be taken by another thread while this one goes on).
        signal.pthread_kill(threading.get_ident(), how)


@contextlib.contextmanager
def watch(watcher: Callable[[str], None]) -> Iterator[None]:
    """Call ``watcher`` with each step reached, in the thread that reached it (tests only)."""
    global armed
    _watchers.append(watcher)
    armed = True
    try:
        yield
    finally:
        _watchers.remove(watcher)
        armed = STOP_AT is not None or bool(_watchers)
