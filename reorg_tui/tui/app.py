"""ReorgApp: hosts the engine in a thread worker and shows its snapshot a few times a second.

Over 300 lines because every key an operator has (and the command palette's entries, and the
worker that runs each quarantine operation) is declared here, beside the actions it calls; the
panes, screens and tables that draw are in widgets/ and screens/.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.events import Resize
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from reorg_tui.engine import AlreadyRunning, ExitCode, Record, ReorgError, State, foreseen_failure
from reorg_tui.engine.roots import RootReplaced
from reorg_tui.fleet_status import FleetHealth
from reorg_tui.names import safe
from reorg_tui.tui.bridge import Host
from reorg_tui.tui.driver import HangupSafeDriver
from reorg_tui.tui.quarantine_listing import Listing
from reorg_tui.tui.screens.confirm import ConfirmScreen
from reorg_tui.tui.screens.details import DetailsScreen, InfoScreen, event_text, retry_text
from reorg_tui.tui.screens.help import HelpScreen
from reorg_tui.tui.screens.instance import InstanceScreen
from reorg_tui.tui.screens.quarantine import QuarantineView
from reorg_tui.tui.widgets.activity import ActivityLog, ActivityPane
from reorg_tui.tui.widgets.disk import DiskPane
from reorg_tui.tui.widgets.error_rate import ErrorRatePane
from reorg_tui.tui.widgets.fleet_view import FleetTable, FleetView
from reorg_tui.tui.widgets.history_view import HistoryView
from reorg_tui.tui.widgets.pane import Pane
from reorg_tui.tui.widgets.quarantine_table import QuarantineTable
from reorg_tui.tui.widgets.retry_table import RetryTable
from reorg_tui.tui.widgets.status import Banner, StatusLine
from reorg_tui.tui.widgets.throughput import ThroughputPane
from reorg_tui.tui.widgets.timing import TimingPane
from reorg_tui.tui.widgets.waiting_view import WaitingTable, WaitingView


class QuarantineLoaded(Message):
    def __init__(self, listing: Listing) -> None:
        super().__init__()
        self.listing = listing  # sorted and made ready to filter in the worker, not the UI thread


class FleetLoaded(Message):
    def __init__(self, health: FleetHealth) -> None:
        super().__init__()
        self.health = health


class DetailsLoaded(Message):
    def __init__(self, record: Record) -> None:
        super().__init__()
        self.record = record


class OperationDone(Message):
    def __init__(self, summary: str, failed: bool, *, warned: bool = False) -> None:
        super().__init__()
        self.summary = summary
        self.failed = failed
        self.warned = warned  # done, but some will be back: a release whose cause is still there


# What a read-only viewer may not do: the app's actions, and the palette's entries for them.
CHANGING = frozenset({"toggle_pause", "release", "delete"})
CHANGING_COMMANDS = frozenset(
    {
        "Pause or resume",
        "Mark all",
        "Mark the filtered rows",
        "Clear marks",
        "Release selected",
        "Delete selected",
    }
)


class ReorgApp(App[int]):
    # Absolute: Textual resolves a relative path next to the module of the running class, and a
    # subclass (the benchmark's, a test's) lives elsewhere.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "reorg-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]
    PALETTE_KEY_FROM = 100  # columns: below, the footer leaves ctrl+p (the help names it) to the keys
    BINDINGS = [
        # Help first: the footer lists the focused widget's keys, then these, and cuts at the edge.
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("p", "toggle_pause", "Pause/resume", id="app.pause"),
        Binding("q", "quit_drain", "Quit", id="app.quit"),
        # Textual's own ctrl+c only says how to quit: here it quits as q does (a focused search
        # field's ctrl+c copies, as before).
        Binding("ctrl+c", "quit_drain", "Quit", show=False, id="app.interrupt"),
        Binding("1", "show_tab('overview')", "Overview", id="app.overview"),
        Binding("2", "show_tab('quarantine')", "Quarantine", id="app.quarantine"),
        Binding("3", "show_tab('history')", "History", id="app.history"),
        Binding("4", "show_tab('waiting')", "Waiting", id="app.waiting"),
        # Only with --coordinator, where the tab exists (not in the footer: its tab names it).
        Binding("5", "show_tab('fleet')", "Fleet", show=False, id="app.fleet"),
        Binding("f", "follow_activity", "Follow activity", show=False, id="app.follow"),
    ]

    def __init__(
        self,
        host: Host,
        *,
        refresh_interval: float = 0.2,  # 5 a second: under load a late tick is skipped, not queued
        now: float | None = None,
        quit_after: float | None = None,
        attached: bool = False,
        read_only: bool = False,
        fleet: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.fleet = fleet  # (coordinator URL, source): the Fleet view's, with --coordinator
        self.quit_after = quit_after
        self.attached = attached  # another process runs the engine; quitting leaves it running
        self.read_only = read_only  # a viewer: no pause, release, delete, nor the marks for them
        self.host = host
        self.refresh_interval = refresh_interval
        self.now = now  # a fixed clock, for deterministic screenshots
        self.stop_event = threading.Event()
        self.quitting = False
        self._quarantine_count: int | None = None  # the count the tab shows
        self._listed: tuple[int, bool] | None = None  # (count, starting) when last listed
        self._fleet_health: FleetHealth | None = None  # the Fleet view's, as last read

    def get_driver_class(self) -> type[Driver]:
        chosen = super().get_driver_class()
        return HangupSafeDriver if chosen is LinuxDriver else chosen

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status", markup=False)
        yield Banner(id="banner", markup=False)
        with TabbedContent(initial="overview", id="tabs"):
            with TabPane("Overview [1]", id="overview"):
                with Grid(id="panes"):
                    yield ThroughputPane()
                    yield ErrorRatePane()
                    yield DiskPane()
                    yield TimingPane()
                with Horizontal(id="lower"):
                    yield RetryTable(id="retry")
                    yield ActivityPane(id="activity-pane")
            with TabPane("Quarantine [2]", id="quarantine"):
                yield QuarantineView(id="quarantine-view")
            with TabPane("History [3]", id="history"):
                yield HistoryView(self.host, id="history-view")
            with TabPane("Waiting [4]", id="waiting"):
                yield WaitingView(id="waiting-view")
            if self.fleet is not None:
                with TabPane("Fleet [5]", id="fleet"):
                    yield FleetView(id="fleet-view")
        yield Footer()

    def on_mount(self) -> None:
        self._catch_signals()
        self.query_one("#retry").border_title = "Retry queue"
        self.query_one("#activity").border_title = "Activity"
        table = self.query_one(QuarantineTable)
        table.now = self.now
        if self.host.live:
            self.run_engine()
            self.set_interval(self.refresh_interval, self.refresh_from_engine)
            if self.quit_after:
                self.set_timer(self.quit_after, self.action_quit_drain)
        else:
            table.show(Listing.of(self.host.quarantine_list()))
        if self.fleet is not None:
            self.load_fleet()
            self.set_interval(1.0, self.load_fleet)
        self.refresh_from_engine()

    def on_resize(self, event: Resize) -> None:
        self.query_one(Footer).show_command_palette = event.size.width >= self.PALETTE_KEY_FROM

    # ---- the engine, hosted -------------------------------------------------------------

    @work(thread=True, group="engine", exit_on_error=False, name="engine")
    def run_engine(self) -> None:
        self.host.run(self.stop_event)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "engine" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        error = event.worker.error
        if isinstance(error, (AlreadyRunning, RootReplaced)):
            self.exit(error.exit_code, message=f"reorg-tui: error: {error}")
        elif error is not None:
            self.exit(ExitCode.INTERNAL, message=f"reorg-tui: engine failed: {type(error).__name__}: {error}")
        else:
            self.exit(ExitCode.OK)

    def refresh_from_engine(self) -> None:
        """UI thread: reads a copy of the engine's state; never blocks, never touches files."""
        if self._exit or not self.query(StatusLine):
            return  # shutting down: the widgets are already gone
        snap = self.host.snapshot()
        events = self.host.drain_events()
        with self.batch_update():
            self.query_one(StatusLine).show(
                snap,
                draining=self.quitting and not self.attached,
                attached=self.attached,
                read_only=self.read_only,
            )
            self.query_one(Banner).show(snap, attached=self.attached)
            for pane in self.query(Pane):
                pane.update_from(snap)
            self.query_one(RetryTable).show(snap)
            self.query_one(WaitingView).show(snap)
            self.query_one(ActivityLog).add(events, snap.dest)
            if snap.quarantine.count != self._quarantine_count:
                # Only on change: a new label restarts the tab underline's animation.
                self._quarantine_count = snap.quarantine.count
                tab = self.query_one(TabbedContent).get_tab("quarantine")
                tab.label = f"Quarantine ({snap.quarantine.count}) [2]"  # type: ignore[assignment]
            # Listed again when the count changes, and once the engine has started: while it
            # starts, a listing is the index as the last run left it (engine.quarantine_list).
            listed = (snap.quarantine.count, snap.state == State.STARTING)
            if self.host.live and listed != self._listed:
                self._listed = listed
                self.load_quarantine()

    # ---- the fleet, off the UI thread -------------------------------------------------------

    @work(thread=True, group="fleet", exclusive=True, exit_on_error=False)
    def load_fleet(self) -> None:
        from reorg_tui.fleet_status import check_fleet

        assert self.fleet is not None
        url, source = self.fleet
        self.post_message(FleetLoaded(check_fleet(url, source)))

    def on_fleet_loaded(self, message: FleetLoaded) -> None:
        self._fleet_health = message.health
        if self.query("#fleet-view"):
            self.query_one(FleetView).show(message.health)
        if isinstance(self.screen, InstanceScreen):
            self.screen.show(message.health.member(self.screen.key), message.health.line)

    @on(DataTable.RowSelected, "#fleet-table")
    def _instance_chosen(self, event: DataTable.RowSelected) -> None:
        """Attach to the instance under the cursor: its panes, as it writes them."""
        key = event.row_key.value or ""
        member = None if self._fleet_health is None else self._fleet_health.member(key)
        if member is not None:
            screen = InstanceScreen(key, f"{member.host} pid {member.pid}")
            self.push_screen(screen)
            self.call_after_refresh(screen.show, member)

    # ---- the quarantine, off the UI thread --------------------------------------------------

    @work(thread=True, group="quarantine", exclusive=True, exit_on_error=False)
    def load_quarantine(self) -> None:
        self.post_message(QuarantineLoaded(Listing.of(self.host.quarantine_list())))

    def on_quarantine_loaded(self, message: QuarantineLoaded) -> None:
        for table in self.query(QuarantineTable):  # none once shutting down: the widgets are gone
            table.show(message.listing)

    # Described here: Textual's default is the repr of the arguments (every id marked), built
    # on the UI thread.
    @work(thread=True, group="operations", exit_on_error=False, description="a quarantine operation")
    def run_operation(self, verb: str, ids: list[str]) -> None:
        done, failures, again = 0, [], []
        records = {r.id: r for r in self.host.quarantine_list()} if verb == "release" else {}
        for item_id in ids:
            try:
                if verb == "release":
                    record = records.get(item_id)
                    problem = foreseen_failure(record, self.host.snapshot().dest) if record else None
                    if problem:
                        again.append(f"{records[item_id].name}: {problem}")
                    self.host.release(item_id)
                else:
                    self.host.delete(item_id)
                done += 1
            except Exception as exc:  # each file on its own: one failure does not stop the rest
                failures.append(f"{item_id}: {exc}")
        summary = f"{'Released' if verb == 'release' else 'Deleted'} {done} file(s)"
        if again:
            summary += f"; {len(again)} will be quarantined again: " + "; ".join(again[:3])
            summary += f" (and {len(again) - 3} more)" if len(again) > 3 else ""
        if failures:
            summary += f"; {len(failures)} failed: " + "; ".join(failures)
        self.post_message(OperationDone(summary, bool(failures), warned=bool(again)))
        self.post_message(QuarantineLoaded(Listing.of(self.host.quarantine_list())))

    def on_operation_done(self, message: OperationDone) -> None:
        severity: SeverityLevel = (
            "error" if message.failed else "warning" if message.warned else "information"
        )
        self.notify(safe(message.summary), severity=severity, markup=False)

    # ---- actions --------------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.toggle_pause(resume=self.host.snapshot().state == State.PAUSED)

    @work(thread=True, group="control", exit_on_error=False)
    def toggle_pause(self, resume: bool) -> None:
        """In a worker: for an attached dashboard this is a round trip to the daemon's socket."""
        try:
            if resume:
                self.host.resume()
            else:
                self.host.pause()
        except Exception as exc:
            self.post_message(OperationDone(f"Could not {'resume' if resume else 'pause'}: {exc}", True))
            return
        done = "Resumed" if resume else "Paused: moves in flight finish, nothing new starts"
        self.post_message(OperationDone(done, False))

    def action_quit_drain(self) -> None:
        if self.quitting or not self.host.live:
            self.exit(ExitCode.OK)
            return
        if self.attached:
            self.quitting = True
            self.stop_event.set()  # stops following; the daemon itself runs on
            return
        self.quitting = True
        self.stop_event.set()
        self.notify("Finishing in-flight moves; press q again to quit at once", markup=False)
        self.refresh_from_engine()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_follow_activity(self) -> None:
        self.query_one(ActivityLog).action_follow()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "quarantine":
            self.query_one(QuarantineTable).focus()
        elif tab == "history":
            self.query_one(HistoryView).action_search()  # type to search at once
        elif tab == "waiting":
            self.query_one(WaitingTable).focus()  # the rows; / filters
        elif tab == "fleet":
            self.query_one(FleetTable).focus()

    def _marks(self, action: str) -> None:
        self.action_show_tab("quarantine")
        getattr(self.query_one(QuarantineView), f"action_{action}")()

    def _mark_all(self) -> None:
        self._marks("clear_filter")
        self._marks("mark_shown")

    def _selection(self) -> list[str]:
        ids = self.query_one(QuarantineTable).selection()
        if not ids:
            self.notify("Nothing selected: the quarantine is empty", markup=False)
        return ids

    def action_release(self, ids: list[str] | None = None) -> None:
        ids = ids or self._selection()
        if ids:
            self.run_operation("release", ids)

    def action_delete(self, ids: list[str] | None = None) -> None:
        ids = ids or self._selection()
        if not ids:
            return
        records = self.query_one(QuarantineTable).records
        names = ", ".join(safe(records[i].name) for i in ids if i in records)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_operation("delete", ids)

        self.push_screen(ConfirmScreen(f"Delete {len(ids)} file(s) for good?", names), answered)

    def action_details(self, item_id: str) -> None:
        if item_id in self.query_one(QuarantineTable).records:
            self.load_details(item_id)

    @work(thread=True, group="details", exclusive=True, exit_on_error=False)
    def load_details(self, item_id: str) -> None:
        """The whole record (the rows leave error histories out), read off the UI thread."""
        try:
            record = self.host.quarantine_record(item_id)
        except ReorgError as exc:  # released or deleted meanwhile, by another process
            self.post_message(OperationDone(str(exc), failed=True))
        else:
            self.post_message(DetailsLoaded(record))

    def on_details_loaded(self, message: DetailsLoaded) -> None:
        record = message.record
        item_id = record.id
        path = f"{self.host.snapshot().quarantine_dir}/{record.id}/{record.name}"

        def chosen(choice: str | None) -> None:
            if choice == "release":
                self.action_release([item_id])
            elif choice == "delete":
                self.action_delete([item_id])

        self.push_screen(DetailsScreen(record, path, now=self.now), chosen)

    def on_activity_log_chosen(self, message: ActivityLog.Chosen) -> None:
        text = event_text(message.event, self.host.snapshot().quarantine_dir)
        self.push_screen(InfoScreen(f"Event: {message.event.kind}", text))

    @on(DataTable.RowSelected, "#retry")
    def _retry_chosen(self, event: DataTable.RowSelected) -> None:
        table = self.query_one(RetryTable)
        item = table.items.get(event.row_key.value or "")
        if item is not None and table.last is not None:
            self.push_screen(InfoScreen("Waiting to be tried again", retry_text(item, table.last)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A read-only viewer has no key, palette entry or action that changes anything; without
        a coordinator there is no Fleet view to show."""
        if action == "show_tab" and parameters == ("fleet",) and self.fleet is None:
            return False
        return not (self.read_only and action in CHANGING)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if self.read_only:
            yield from (c for c in self._system_commands(screen) if c.title not in CHANGING_COMMANDS)
            return
        yield from self._system_commands(screen)

    def _system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's Quit exits at once, beside ours that drains; its Keys repeats our Help.
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command
        yield SystemCommand("Pause or resume", "Stop or restart intake (p)", self.action_toggle_pause)
        yield SystemCommand(
            "Quit", "Finish in-flight moves, then exit (q; q again quits at once)", self.action_quit_drain
        )
        yield SystemCommand(
            "Show overview", "Throughput, errors, disk, retries", lambda: self.action_show_tab("overview")
        )
        yield SystemCommand(
            "Show quarantine", "Browse quarantined files", lambda: self.action_show_tab("quarantine")
        )
        yield SystemCommand(
            "Show history",
            "Where files went: search the ledger by name (3)",
            lambda: self.action_show_tab("history"),
        )
        yield SystemCommand(
            "Follow activity", "Show the newest events as they come (f)", self.action_follow_activity
        )
        yield SystemCommand("Mark all", "Mark every quarantined file (clears the filter)", self._mark_all)
        yield SystemCommand(
            "Mark the filtered rows", "Mark the files the filter shows (a)", lambda: self._marks("mark_shown")
        )
        yield SystemCommand("Clear marks", "Unmark every file (u)", lambda: self._marks("clear_marks"))
        yield SystemCommand("Release selected", "Send marked (or current) files back", self.action_release)
        yield SystemCommand("Delete selected", "Delete marked (or current) files", self.action_delete)
        yield SystemCommand("Help", "Keys, panes and the queue words (?)", self.action_help)

    def _catch_signals(self) -> None:
        """SIGTERM, and SIGHUP (its terminal closed), quit as q does: the moves in flight finish,
        the engine lets go of the source, and what ran the dashboard (the demo) cleans up. Textual
        installs no handler for either, and by default each kills the process where it stands."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.action_quit_drain)
        loop.add_signal_handler(signal.SIGHUP, self._hung_up)

    def _hung_up(self) -> None:
        """The terminal is gone: what is still drawn goes to /dev/null, not to a closed terminal
        (whose writes fail, and Textual's writer thread dies of it, leaving the exit blocked)."""
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        self.action_quit_drain()

    def on_unmount(self) -> None:
        self.stop_event.set()  # however the app ends, the engine drains and lets go of the source
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
