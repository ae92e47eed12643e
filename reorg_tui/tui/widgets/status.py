"""The status line and the banner: where files go, what the engine is doing, and why not."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from reorg_tui.engine.metrics import Snapshot
from reorg_tui.tui.text import literal, uptime

STATES = {
    "starting": ("starting", "-starting"),
    "running": ("running", "-running"),
    "paused": ("paused by operator", "-paused"),
    "paused-disk": ("paused: disk low", "-disk"),
    "draining": ("draining", "-draining"),
    "stopped": ("stopped", "-stopped"),
}


class StatusLine(Static):
    def show(self, snap: Snapshot, draining: bool = False, attached: bool = False) -> None:
        state = "draining" if draining and snap.state not in ("stopped",) else snap.state
        label, cls = STATES.get(state, (state, "-running"))
        for _, other in STATES.values():
            self.set_class(other == cls, other)
        line = Text.assemble(
            (f" ● {label} ", "bold"),
            ("[attached] " if attached else "", "bold"),
            " ",
            literal(snap.source),
            " → ",
            literal(snap.dest),
            f"  {snap.watcher}  up {uptime(snap.uptime)}  {snap.workers_busy}/{snap.workers_total} busy",
        )
        self.update(line)


class Banner(Static):
    """Shown only while something needs the operator's eye."""

    def show(self, snap: Snapshot) -> None:
        if snap.alerts:
            self.update(Text("ALERT: " + "; ".join(snap.alerts), style="bold"))
            self.set_class(True, "-visible", "-error")
        elif snap.state == "paused-disk":
            self.update(Text(f"Intake paused: {snap.pause_reason}. Files wait in the source.", style="bold"))
            self.set_class(True, "-visible", "-error")
        elif snap.state == "paused":
            self.update(Text("Paused by operator: nothing moves. Press p to resume.", style="bold"))
            self.set_class(True, "-visible")
            self.set_class(False, "-error")
        else:
            self.set_class(False, "-visible", "-error")
