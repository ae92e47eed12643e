"""Showing new content only where it is new.

The panes are handed a snapshot four times a second, and most of what they show is what they
showed already (an idle daemon's counts, a path, a pause's reason). ``Static.update`` repaints
whatever it is given, and by default lays the whole screen out again: that was most of the UI
thread's work, and the engine it hosts shares the interpreter with it.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def show(static: Static, content: Text | str, *, layout: bool = False) -> None:
    """Put ``content`` in ``static`` unless it holds it already. ``layout``: the widget's size
    may change with it (a height of auto); a box of fixed size needs no new layout."""
    if static.content == content:
        return
    static.update(content, layout=layout)
