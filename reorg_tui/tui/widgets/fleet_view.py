"""The Fleet view (key 5, with --coordinator): one row a instance of the fleet, from the snapshots
they write to the coordinator (as ``status --coordinator`` reads them), and the fleet's health.

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
        for source, members in health.members.items():
            for m in members:
                rows[f"{source}\0{m.host}\0{m.pid}"] = (
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
        total = sum(len(ms) for ms in health.members.values())
        self.query_one("#fleet-note", Static).update(f"{health.line} ({total} instance(s) seen)")
        self.query_one(FleetTable).show(health)
