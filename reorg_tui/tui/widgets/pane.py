"""The base of every live pane: it is handed each new Snapshot and shows it."""

from __future__ import annotations

from textual import events
from textual.containers import Vertical

from reorg_tui.engine import Snapshot


class Pane(Vertical):
    """A bordered box with a title; subclasses fill ``show``."""

    TITLE = ""

    def on_mount(self) -> None:
        self.border_title = self.TITLE

    last: Snapshot | None = None

    def update_from(self, snap: Snapshot) -> None:
        self.last = snap
        self.show(snap)

    def on_resize(self, event: events.Resize) -> None:
        if self.last is not None:  # some panes draw to their width
            self.show(self.last)

    def show(self, snap: Snapshot) -> None:
        raise NotImplementedError
