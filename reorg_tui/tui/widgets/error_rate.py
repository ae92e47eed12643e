from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from reorg_tui.engine import ERROR_WINDOW, Snapshot
from reorg_tui.tui.text import count
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.throughput import SPARK_SECONDS

ALERT_ERROR_RATE = 0.05  # failed or quarantined files / files handled over the window


class ErrorRatePane(Pane):
    TITLE = "Errors"

    def compose(self) -> ComposeResult:
        yield Static(id="errors-text", markup=False)
        yield Sparkline([0.0], id="errors-spark")

    def show(self, snap: Snapshot) -> None:
        t = snap.totals
        self.set_class(snap.error_rate >= ALERT_ERROR_RATE, "-alert")
        self.query_one("#errors-text", Static).update(
            f"error rate {snap.error_rate:.1%} ({ERROR_WINDOW // 60} min)\n"
            f"failed {count(t.failed_attempts)}  retried {count(t.retried)}\n"
            f"quarantined {count(t.quarantined)}  vanished {count(t.vanished)}"
        )
        self.query_one("#errors-spark", Sparkline).data = [float(h[3]) for h in snap.history[-SPARK_SECONDS:]]
