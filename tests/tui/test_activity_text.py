"""The activity pane's wording of engine events."""

from __future__ import annotations

from reorg_tui.engine import events as ev
from reorg_tui.tui.widgets.activity import describe


def test_a_wait_for_room_is_not_called_a_retry():
    wait = describe(ev.Waiting("/src/2024-01-01_a.txt", "move: ENOSPC No space left on device", 2.0))
    retry = describe(ev.Retried("/src/2024-01-01_a.txt", 2, "move: EPERM Operation not permitted", 0.4))
    assert wait is not None and wait.startswith("waiting") and "again in 2.0s" in wait
    assert retry is not None and retry.startswith("retry 2")
