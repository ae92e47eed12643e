"""One instance of the fleet, attached from the Fleet view (``enter`` on its row): its live panes
(throughput, errors, disk, time per file and queues) drawn from the snapshot it writes to the
coordinator each second, whatever host it runs on. Read-only: pausing or releasing there is that
host's own dashboard's or command line's; here nothing is sent to it.

The app's fleet worker reads every instance's snapshot once a second (one query); this screen only
draws the one it is given, on the UI thread.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Static

from reorg_tui.fleet_status import LABELS, Member
from reorg_tui.tui.text import literal
from reorg_tui.tui.widgets.disk import DiskPane
from reorg_tui.tui.widgets.error_rate import ErrorRatePane
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.repaint import show
from reorg_tui.tui.widgets.throughput import ThroughputPane
from reorg_tui.tui.widgets.timing import TimingPane


class InstanceScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back to the fleet"),
        Binding("q", "app.pop_screen", "Back", show=False),
    ]

    def __init__(self, key: str, title: str) -> None:
        super().__init__()
        self.key = key  # the instance's (Member.key)
        self.title_text = title
        self.shown: Member | None = None  # what was drawn last (tests read it)

    def compose(self) -> ComposeResult:
        yield Static(f"{self.title_text}: waiting for its snapshot", id="instance-head", markup=False)
        with Grid(id="instance-panes"):
            yield ThroughputPane()
            yield ErrorRatePane()
            yield DiskPane()
            yield TimingPane()
        yield Footer()

    def show(self, member: Member | None, fleet: str = "") -> None:
        """Its latest snapshot. None: the coordinator does not list it now (it was forgotten, or
        the coordinator does not answer: ``fleet``, the fleet's health line, says which); the
        panes keep the last one drawn."""
        head = self.query_one("#instance-head", Static)
        if member is None or member.snapshot is None:
            show(head, literal(f"{self.title_text}: not listed by the coordinator now ({fleet})"))
            return
        self.shown = member
        role = ", the lister" if member.lister else ""
        show(
            head,
            literal(
                f"{member.host} pid {member.pid}: {member.state}{role}, {member.moved:,} moved, "
                f"seen {member.seen_ago:.0f} s ago; {LABELS[member.code]}: {member.line} "
                "(read-only, from the coordinator; escape: back)"
            ),
        )
        for pane in self.query(Pane):
            pane.update_from(member.snapshot)
