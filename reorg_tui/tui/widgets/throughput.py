from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from reorg_tui.engine import Snapshot
from reorg_tui.tui.text import count, rate, size
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.repaint import show

SPARK_SECONDS = 120


class ThroughputPane(Pane):
    TITLE = "Throughput"

    def compose(self) -> ComposeResult:
        yield Static(id="throughput-text", markup=False)
        yield Sparkline([0.0], id="throughput-spark")

    def show(self, snap: Snapshot) -> None:
        f, b, t = snap.files_per_second, snap.bytes_per_second, snap.totals
        # Renames (a collision name, name (1).ext) come before the size: a narrow pane cuts the end.
        moved = f"({count(t.renamed)} renamed)" if t.renamed else "files"
        show(
            self.query_one("#throughput-text", Static),
            f"now {rate(f[10])} files/s  {size(b[10])}/s\n"
            f"1 min {rate(f[60])}/s  5 min {rate(f[300])}/s\n"
            f"moved {count(t.moved)} {moved} · {size(t.bytes)}",
        )
        self.query_one("#throughput-spark", Sparkline).data = [
            float(h[0]) for h in snap.history[-SPARK_SECONDS:]
        ]
