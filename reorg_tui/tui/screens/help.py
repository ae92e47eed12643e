from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
Keys
  1 / 2 / 3 / 4  overview / quarantine / history / waiting (5: the fleet, with --coordinator)
  p            pause or resume intake (moves in flight finish)
  q            quit after in-flight moves finish; q again forces
  ?            this help; escape (or q, or ?) closes it
  ctrl+p       command palette: every action by name
  tab          the next pane or table

In a table or the Activity pane
  up / down    move the cursor
  home, g      the first row (in Activity: the oldest line)
  end, G       the last row (in Activity: the newest, and follow it again)
  enter        the row in full: whole paths, the whole error

Activity
  /            filter as you type: a name, an outcome, an error (the whole paths and the
               whole error count); re: for a regular expression; escape clears
  e            errors only (retries, failures, quarantines, warnings); e again: all
  It follows the newest events. Scrolling up or moving the cursor up stops that, and its
  border says "not following"; end, G, or f from anywhere on the overview follows again.

Quarantine
  /            filter by name or reason (escape clears)
  space        mark or unmark a file
  a            mark every row shown: all of them, or those the filter shows
  s            sort by the next column: age, size, tries, reason, file (a click on a
               column's header sorts by it; again, the other way)
  u            clear the marks
  enter        details: original path, destination, every error
  r            release: back to the source, through the pipeline again
  d            delete for good (asks first)
  r and d act on the marked files, or on the one under the cursor.

History (every transfer the ledger holds: delivered, quarantined, released, undone)
  3            the history, with the cursor in its search box: type part of a file name,
               or a glob (2024-11-*, *.pdf); the rows follow as you type
  enter, down  from the search box to the rows; / goes back to it
  escape       clears the search
  enter        on a row: both whole paths, the times, every earlier attempt's error
  From is shown below the source, To below the destination (or quarantine/).

Waiting (the files waiting longest in the source, longest first)
  4            the list, refreshed live: each file's why (settling: still being written;
               ready; retrying, since its first failure; waiting for room), how long, and
               what it waits on; --alert-pending-age raises an alert for the oldest
  /            filter by name, why or error (escape clears); enter: one file whole

Fleet (with --coordinator: every instance of the fleet, from the coordinator)
  5            one row an instance: host, pid, state, the lister, files/s, last seen, health;
               above them the fleet's health and totals
  enter        attach to that instance, on whatever host: its live panes, read-only;
               escape goes back to the fleet

Queues (the "Time per file · queues" pane)
  settling     seen in the source; waits until its size and mtime hold still (--settle)
  ready        settled; waits for a free worker
  in flight    a worker is moving it now
  retry        an attempt failed and it waits for the next, or it waits for room on the
               destination (the Retry queue lists them)

An attempt is one try at moving a file. A failed attempt is tried again later with backoff,
up to --max-retries times, then the file goes to the quarantine (an impossible date goes at
once). A file that waits for room (a full or unmounted destination) makes no attempt and
uses up no retries: the Retry queue says "waiting for room".

Panes
  Throughput   files/s and bytes/s now (10 s), over 1 and 5 min
  Errors       error rate: files that failed or were quarantined / files
               handled (moved, skipped, failed or quarantined) over 1 min;
               red while the --alert-error-rate alert is on (the daemon's, when
               attached). Waiting for room is not counted: the disk alert covers it
  Disk         used space; ┃ marks the free-space minimum where intake pauses
  Time         per file: mean, median, 95th percentile, slowest
  Retry queue  each file waiting: attempts so far, when it is tried next, its last error
  Activity     the latest events, newest at the bottom; destinations relative to DEST
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP, markup=False)

    def on_mount(self) -> None:
        box = self.query_one("#help-box")
        box.border_title = "reorg-tui help"
        box.border_subtitle = "escape closes"
