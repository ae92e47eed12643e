from __future__ import annotations

from textual.widgets import Static

from reorg_tui.engine import Snapshot
from reorg_tui.present import duration
from reorg_tui.tui.text import count
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.repaint import show


class TimingPane(Pane):
    TITLE = "Time per file · queues"

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="timing-text", markup=False)

    def show(self, snap: Snapshot) -> None:
        t, q = snap.timing, snap.queues
        show(
            self.query_one("#timing-text", Static),
            f"mean {duration(t.mean)}  p50 {duration(t.p50)}\n"
            f"p95 {duration(t.p95)}  max {duration(t.max)}\n"
            f"settling {count(q.settling)}  ready {count(q.ready)}\n"
            f"in flight {count(q.in_flight)}  retry {count(q.retry)}",
        )
