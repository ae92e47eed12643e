"""The status line and the banner: where files go, what the engine is doing, and why not."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from reorg_tui.engine import Snapshot, State
from reorg_tui.tui.text import clock, literal, uptime
from reorg_tui.tui.widgets.repaint import show

STATES: dict[str, tuple[str, str]] = {  # the label shown, and the CSS class that colours it
    State.STARTING: ("starting", "-starting"),
    State.RUNNING: ("running", "-running"),
    State.PAUSED: ("paused by operator", "-paused"),
    State.PAUSED_DISK: ("paused: disk low", "-disk"),
    State.PAUSED_COORDINATOR: ("paused: coordinator down", "-disk"),
    State.DRAINING: ("draining", "-draining"),
    State.STOPPED: ("stopped", "-stopped"),
}


class StatusLine(Static):
    def show(
        self, snap: Snapshot, draining: bool = False, attached: bool = False, read_only: bool = False
    ) -> None:
        state = State.DRAINING if draining and snap.state != State.STOPPED else snap.state
        label, cls = STATES.get(state, (state, "-running"))
        if attached and state == State.STOPPED:
            label = f"not running since {clock(snap.taken_at)}"  # the uptime stopped then too
        for _, other in STATES.values():
            self.set_class(other == cls, other)
        line = Text.assemble(
            (f" ● {label} ", "bold"),
            ("[read-only] " if read_only else "[attached] " if attached else "", "bold"),
            " ",
            literal(snap.source),
            " → ",
            literal(snap.dest),
            f"  {snap.watcher}  up {uptime(snap.uptime)}  {snap.workers_busy}/{snap.workers_total} busy",
        )
        show(self, line)  # one line high: no layout


class Banner(Static):
    """Shown only while something needs the operator's eye."""

    def show(self, snap: Snapshot, attached: bool = False) -> None:
        if attached and snap.state == State.STOPPED:
            show(
                self,
                Text(
                    f"The instance on this source is not running since {clock(snap.taken_at)}: "
                    "files are not moving. Start it again (supervisorctl start, systemctl start); "
                    "this dashboard re-attaches by itself.",
                    style="bold",
                ),
                layout=True,
            )
            self.set_class(True, "-visible", "-error")
        elif snap.alerts:
            show(self, Text("ALERT: " + "; ".join(snap.alerts), style="bold"), layout=True)
            self.set_class(True, "-visible", "-error")
        elif snap.state in (State.PAUSED_DISK, State.PAUSED_COORDINATOR):
            reason = f"Intake paused: {snap.pause_reason}. Files wait in the source."
            show(self, Text(reason, style="bold"), layout=True)
            self.set_class(True, "-visible", "-error")
        elif snap.state == State.PAUSED:
            show(
                self, Text("Paused by operator: nothing moves. Press p to resume.", style="bold"), layout=True
            )
            self.set_class(True, "-visible")
            self.set_class(False, "-error")
        else:
            self.set_class(False, "-visible", "-error")
