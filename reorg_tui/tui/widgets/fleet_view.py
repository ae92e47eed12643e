"""The Fleet view (key 5, with --coordinator): one row an instance of the fleet, from the snapshots
they write to the coordinator (as ``status --coordinator`` reads them), the fleet's health and its
totals; ``enter`` on a row attaches to that instance, on whatever host (InstanceScreen).

Read by a thread worker of the App once a second (a database query never runs on the UI thread);
this widget only draws what it is given, the rows updated by key.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from reorg_tui.fleet_status import LABELS, FleetHealth
from reorg_tui.tui.text import literal
from reorg_tui.tui.widgets.keyed_table import KeyedTable


class FleetTable(KeyedTable):
    COLUMNS = (
        ("host", "Host"),
        ("pid", "Pid"),
        ("state", "State"),
        ("role", "Role"),
        ("rate", "Files/s"),
        ("seen", "Seen"),
        ("health", "Health"),
    )

    def show(self, health: FleetHealth) -> None:
        rows = {}
        for members in health.members.values():
            for m in members:
                rows[m.key] = (
                    literal(m.host),
                    str(m.pid),
                    m.state,
                    "lister" if m.lister else "",
                    f"{m.files_per_second:.1f}",
                    f"{m.seen_ago:.0f} s ago",
                    LABELS[m.code],
                )
        self.sync(rows)


class FleetView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("asking the coordinator...", id="fleet-note", markup=False)
        yield FleetTable(id="fleet-table")

    def show(self, health: FleetHealth) -> None:
        """The UI thread: draws what the worker read."""
        seen = sum(len(ms) for ms in health.members.values())
        running, moved, rate = health.totals()
        self.query_one("#fleet-note", Static).update(
            f"{health.line}\n{running} of {seen} instance(s) seen running: {moved:,} moved, "
            f"{rate:.1f} files/s (enter: look at one)"
        )
        self.query_one(FleetTable).show(health)
