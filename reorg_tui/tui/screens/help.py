from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
Keys
  1 / 2        overview / quarantine
  p            pause or resume intake (moves in flight finish)
  q            quit after in-flight moves finish; q again forces
  ?            this help
  ctrl+p       command palette: every action by name

Quarantine
  /            filter by name or reason (escape clears)
  space        mark or unmark a file
  enter        details: original path, destination, every error
  r            release: back to the source, through the pipeline again
  d            delete for good (asks first)
  r and d act on the marked files, or on the one under the cursor.

Panes
  Throughput   files/s and bytes/s now (10 s), over 1 and 5 min
  Errors       error rate: files that failed or were quarantined / files
               handled (moved, skipped, failed or quarantined) over 1 min;
               red at 5%. Waiting for room is not counted: the disk alert is
  Disk         used space; ┃ marks the free-space minimum where intake pauses
  Time         per file: mean, median, 95th percentile, slowest
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP, markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "reorg-tui help"
