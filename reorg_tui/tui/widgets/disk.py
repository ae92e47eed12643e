from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from reorg_tui.engine import Snapshot
from reorg_tui.tui.text import size
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.repaint import show

BAR_WIDTH = 30


def headroom_bar(free_percent: float, min_percent: float, width: int = BAR_WIDTH) -> Text:
    """Used space filled from the left; ``┃`` marks where the free-space minimum starts."""
    used_cells = round(width * (100 - free_percent) / 100)
    mark = min(width - 1, round(width * (100 - min_percent) / 100))
    bar = Text()
    for i in range(width):
        if i == mark:
            bar.append("┃", style="bold")
        elif i < used_cells:
            bar.append("█", style="bold red" if i >= mark else "")
        else:
            bar.append("░", style="dim")
    return bar


class DiskPane(Pane):
    TITLE = "Disk headroom"

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="disk-text", markup=False)

    def show(self, snap: Snapshot) -> None:
        d = snap.disk
        low = d.free_percent < d.min_free_percent
        self.set_class(low, "-alert")
        box = self.query_one("#disk-text", Static)
        text = Text()
        text.append_text(
            headroom_bar(d.free_percent, d.min_free_percent, max(10, min(BAR_WIDTH, self.content_size.width)))
        )
        text.append(f"\n{size(d.free_bytes)} free of {size(d.total_bytes)}")
        text.append(f"\n{d.free_percent:.1f}% free, minimum {d.min_free_percent:g}%")
        q = snap.quarantine
        text.append(f"\nquarantine {q.count} files · {size(q.bytes)}")
        show(box, text)  # a pane is of fixed height: no layout
