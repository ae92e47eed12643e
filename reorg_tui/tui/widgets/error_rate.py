from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from reorg_tui.engine import ERROR_WINDOW, Snapshot
from reorg_tui.tui.text import count
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.repaint import show
from reorg_tui.tui.widgets.throughput import SPARK_SECONDS


class ErrorRatePane(Pane):
    TITLE = "Errors"

    def compose(self) -> ComposeResult:
        yield Static(id="errors-text", markup=False)
        yield Sparkline([0.0], id="errors-spark")

    def show(self, snap: Snapshot) -> None:
        t = snap.totals
        # Red while the error-rate alert is active: the operator's --alert-error-rate (the
        # daemon's, when attached), with the rule's minimum of attempts; as the banner says.
        self.set_class("error_rate" in snap.alert_names, "-alert")
        show(
            self.query_one("#errors-text", Static),
            f"error rate {snap.error_rate:.1%} ({ERROR_WINDOW // 60} min)\n"
            f"failed {count(t.failed_attempts)}  retried {count(t.retried)}\n"
            f"quarantined {count(t.quarantined)}  vanished {count(t.vanished)}",
        )
        self.query_one("#errors-spark", Sparkline).data = [float(h[3]) for h in snap.history[-SPARK_SECONDS:]]
