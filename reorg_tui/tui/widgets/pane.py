"""The base of every live pane: it is handed each new Snapshot and shows it."""

from __future__ import annotations

from textual.containers import Vertical

from reorg_tui.engine.metrics import Snapshot


class Pane(Vertical):
    """A bordered box with a title; subclasses fill ``show``."""

    TITLE = ""

    def on_mount(self) -> None:
        self.border_title = self.TITLE

    def show(self, snap: Snapshot) -> None:
        raise NotImplementedError
