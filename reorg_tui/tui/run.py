"""Starting the dashboard from the command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from reorg_tui import logs
from reorg_tui.config import ConfigError, Settings
from reorg_tui.engine import Engine
from reorg_tui.engine.locate import find_state_dir
from reorg_tui.engine.lock import AlreadyRunning, lock_holder, source_is_locked
from reorg_tui.engine.shard_lock import running_shards, shard_held
from reorg_tui.engine.statedir import check_for_reading
from reorg_tui.engine.statedir import prepare as prepare_state_dir
from reorg_tui.notifications import Notifications
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import AttachedHost, EngineHost


def run_dashboard(settings: Settings, quit_after: float | None = None, *, read_only: bool = False) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("the dashboard needs a terminal; use --headless under a supervisor or in scripts")
    if read_only:  # a viewer writes nothing: no state folder made, no log kept in the daemon's
        log_path = Path(os.devnull)
    else:
        prepare_state_dir(settings.state_dir)  # as a daemon would: refused if another user could write it
        log_path = settings.state_dir / "dashboard.log"
    # The terminal belongs to the dashboard: log records go to a file; events go to the panes.
    with open(log_path, "a", encoding="utf-8") as log_file:
        logs.setup(settings.log_level, settings.log_format, stream=log_file)
        app, closers = dashboard(settings, quit_after, read_only=read_only)
        try:
            code = app.run()
        finally:
            for close in closers:
                close()
            logs.flush()
    return code if isinstance(code, int) else app.return_code or 0


def dashboard(
    settings: Settings, quit_after: float | None = None, *, read_only: bool = False
) -> tuple[ReorgApp, list[Callable[[], None]]]:
    """The app for these settings, and the list of what to close after it (its metrics server,
    its notifications), filled once the engine holds the source.
    Attached to the instance that runs on the source, if one does (found from the source alone,
    wherever it keeps its state); else hosting an engine whose events are logged as the headless
    face logs them (one line a move), by the engine's threads: never the UI's."""
    # /proc/locks first: probing the lock itself would, for an instant, hold it against a daemon
    # starting at that moment.
    if settings.shard is None and (shards := running_shards(settings.source)) is not None:
        raise AlreadyRunning(
            settings.source,
            shards[1],
            message=f"shards of {shards[0]} are processing {settings.source}: give --shard "
            f"K/{shards[0]} to attach to one of them",
        )
    if settings.shard is not None:
        if shard_held(settings.source, settings.shard):  # attach to that shard; else run it here
            base = settings.state_dir.parent  # (load() put the shard's folder below the one given)
            found = settings.with_(state_dir=find_state_dir(settings.source, base, settings.shard))
            check_for_reading(found.state_dir, settings.source)
            host = AttachedHost(found, read_only=read_only)
            return ReorgApp(host, quit_after=quit_after, attached=True, read_only=read_only), []
    elif lock_holder(settings.source) is not None or source_is_locked(settings.source):
        # Another instance runs on this source: attach to it instead of starting a second.
        found = settings.with_(state_dir=find_state_dir(settings.source, settings.state_dir))
        check_for_reading(found.state_dir, settings.source)  # a forged snapshot is not shown
        host = AttachedHost(found, read_only=read_only)
        app = ReorgApp(
            host, quit_after=quit_after, attached=True, read_only=read_only, fleet=_fleet(settings)
        )
        return app, []
    if read_only:
        raise ConfigError(
            f"--read-only attaches to the daemon on {settings.source}, and none runs there: "
            "start it (or drop --read-only to run the engine here)"
        )
    notes = Notifications.for_settings(settings)
    engine = Engine(settings)
    engine.subscribe(logs.log_events)
    engine.watch_log(logs.health)
    if notes is not None:
        notes.attach(engine)
    closers: list[Callable[[], None]] = []

    def started() -> None:  # the source is held: a second instance was refused before a port is bound
        if settings.metrics_port:  # prometheus_client is loaded only for an endpoint asked for
            from reorg_tui.exporter import start_metrics, stop_metrics

            server = start_metrics(engine.snapshot, settings)
            closers.append(lambda: stop_metrics(server))
        if notes is not None:
            notes.start()
            closers.append(lambda: notes.stop(engine.snapshot()))

    return ReorgApp(EngineHost(engine, started), quit_after=quit_after, fleet=_fleet(settings)), closers


def _fleet(settings: Settings) -> tuple[str, str] | None:
    """The Fleet view's coordinator and source, where the settings name a coordinator."""
    return (settings.coordinator, str(settings.source)) if settings.coordinator else None
