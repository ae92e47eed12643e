"""The named steps of the transfer protocol, where a crash test stops the process dead.

``REORG_STOP_AT=STEP`` (or ``STEP:N``, the Nth time it is reached) makes the process SIGKILL
itself the instant the protocol reaches that step: a crash lands exactly between two steps,
rather than wherever a random kill happens to find. Read once, at import; unset (always, outside
the tests) every check is one comparison with None.

The steps, in order, for a copy: ``intent`` (its ledger row written), ``copied`` (bytes durable
in staging), ``staged`` (row at staged), ``published`` (renamed to its target), ``recorded``
(row at published), ``removed`` (source unlinked), then the row at done. For a rename:
``renamed`` (before its row is written). Recovery: ``recovering`` (before it acts on a row).
"""

from __future__ import annotations

import os
import signal

STEPS = ("intent", "copied", "staged", "published", "recorded", "removed", "renamed", "recovering")


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    step, _, nth = value.partition(":")
    if step not in STEPS:
        raise SystemExit(f"REORG_STOP_AT: unknown step {step!r} (known: {', '.join(STEPS)})")
    return step, int(nth) if nth.isdigit() and int(nth) > 0 else 1


STOP_AT = _parse(os.environ.get("REORG_STOP_AT"))
_seen: dict[str, int] = {}


def reached(step: str) -> None:
    """The protocol is at ``step``: stop dead here if a test asked for it."""
    if STOP_AT is None or STOP_AT[0] != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    if _seen[step] == STOP_AT[1]:
        os.kill(os.getpid(), signal.SIGKILL)
