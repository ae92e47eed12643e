"""The headless face: no UI, no terminal needed; logs, signals and an honest exit code."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from reorg_tui import logs, signals
from reorg_tui.config import ConfigError, Settings
from reorg_tui.engine import AlreadyRunning, Engine, ExitCode, Plan, ScanCount, planfile, preview
from reorg_tui.engine.roots import RootReplaced
from reorg_tui.engine.vital import ThreadDied
from reorg_tui.names import safe
from reorg_tui.notifications import Notifications
from reorg_tui.reload import Reloader
from reorg_tui.sdnotify import Notifier

log = logging.getLogger("reorg_tui")


def run_headless(
    settings: Settings,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    hangup_stops: bool = False,
    reread: Callable[[], Settings] | None = None,
) -> int:
    """Run the engine until SIGTERM/SIGINT (or, with once, until the source is done). With
    ``hangup_stops`` (the demo, run in a terminal), SIGHUP stops it too; with ``reread`` (how
    the settings were read at start), SIGHUP and ``reorg-tui reload`` reload them (reload.py)."""
    logs.setup(settings.log_level, settings.log_format)
    notes = Notifications.for_settings(settings) if settings.notify else None
    engine = Engine(settings)
    engine.subscribe(logs.log_events)
    engine.watch_log(logs.health)  # a log nobody reads makes `status` degraded
    if notes is not None:
        notes.attach(engine)
    reloader = Reloader(engine, settings, reread, notes) if reread is not None else None
    if reloader is not None:
        engine.reload_with(reloader)
    stop = stop or threading.Event()
    restore_signals = signals.install(stop, hangup_stops=hangup_stops, on_hangup=reloader)
    servers: list[Any] = []
    threads: list[threading.Thread] = []  # to join before exiting: systemd hears STOPPING=1

    def started() -> None:
        """Once the source is held: a second instance has been refused (exit 3) before this
        binds a port or says it is watching."""
        if settings.metrics_port:  # prometheus_client is loaded only for an endpoint asked for
            from reorg_tui.exporter import start_metrics

            servers.append(start_metrics(engine.snapshot, settings))
        threading.Thread(
            target=_stats_loop, args=(engine, stop, settings.stats_interval), daemon=True
        ).start()
        if notes is not None:
            notes.start()
        logs.emit(
            logging.INFO,
            "started",
            "watching %s -> %s (%d workers, quarantine %s%s)%s",
            str(settings.source),
            str(settings.dest),
            settings.workers,
            str(settings.quarantine),
            "" if settings.shard is None else f", shard {settings.shard}",
            " once" if once else "",
            pid=os.getpid(),
            source=str(settings.source),
            destination=str(settings.dest),
            **({} if settings.shard is None else {"shard": str(settings.shard)}),
        )
        if notifier.active:
            notifier.send("READY=1", f"STATUS=watching {safe(str(settings.source))}")
            feeder = threading.Thread(target=_notify_loop, args=(engine, notifier, stop), daemon=True)
            feeder.start()
            threads.append(feeder)

    notifier = Notifier.from_env()
    replaced: RootReplaced | None = None
    try:
        result = engine.run(stop, once=once, started=started)
    except AlreadyRunning as exc:
        logs.emit(logging.ERROR, "refused", "%s", str(exc), pid=exc.pid)
        return ExitCode.ALREADY_RUNNING
    except ThreadDied:  # logged where it died, in one line; drained since
        result = None
    except RootReplaced as exc:  # drained already: only the summary and the line are left
        replaced, result = exc, None
    finally:
        stop.set()
        restore_signals()
        for server in servers:
            from reorg_tui.exporter import stop_metrics  # loaded already: it made the server

            stop_metrics(server)
        for thread in threads:
            thread.join(timeout=1)
    final = engine.snapshot()
    logs.log_summary(final, event="stopped")
    if notes is not None:  # after the outcome is known, with it
        notes.stop(final, left=len(result.left) if result is not None else 0)
    if replaced is not None:
        logs.emit(logging.ERROR, "root-replaced", "%s", str(replaced), root=replaced.root.label)
        logs.flush()
        return replaced.exit_code
    logs.flush()
    if result is None:
        return ExitCode.INTERNAL
    if once and (result.quarantined or result.failed or result.left):
        for line in result.left:
            logs.emit(logging.WARNING, "left", "left in the source: %s", line)
        return ExitCode.LEFT_BEHIND
    return ExitCode.OK


def _notify_loop(engine: Engine, notifier: Notifier, stop: threading.Event) -> None:
    """Feed systemd's watchdog while the engine answers (a snapshot reads every stage under its
    lock: a stage stuck holding one stops the feeding, and systemd restarts the service); say
    STOPPING=1 once the drain begins."""
    interval = notifier.watchdog_interval
    while not stop.wait(interval):
        engine.snapshot()
        notifier.send("WATCHDOG=1")
    notifier.send("STOPPING=1")


def _stats_loop(engine: Engine, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        logs.log_summary(engine.snapshot())


def dry_run(settings: Settings, out: TextIO | None = None, plan_file: Path | None = None) -> int:
    """Print each planned move (to ``out``, stdout by default: looked up at the call, as a test
    replaces it); touch nothing. With ``plan_file``, also write the plan there as JSON (whole or
    not at all), each file with its identity, for ``reorg-tui apply``."""
    out = out or sys.stdout
    if plan_file is not None:
        plan_file = _plan_path(settings, plan_file)
    count = ScanCount()
    planned = 0
    entries: list[planfile.Entry] = []
    created = time.time()
    for p in preview(settings, count):
        if p.planned is None:
            out.write(f"{safe(p.source)} -> quarantine ({p.problem})\n")
        else:
            note = f"  (exists: {settings.on_conflict})" if p.exists else ""
            out.write(f"{safe(p.source)} -> {safe(p.planned.intended)}{note}\n")
        if plan_file is not None:
            entries.append(planfile.entry(p))
        planned += 1
    written = ""
    if plan_file is not None:
        planfile.write(plan_file, Plan(str(settings.source), str(settings.dest), created, tuple(entries)))
        written = f"; the plan is in {safe(str(plan_file))}"
    out.write(f"{planned} file(s) planned, {count.ignored} ignored; nothing was touched{written}\n")
    return ExitCode.OK


def _plan_path(settings: Settings, plan_file: Path) -> Path:
    """Where the plan goes: a file in an existing folder outside the source, destination and
    quarantine (written there, it would change what it describes)."""
    folder = Path(os.path.realpath(plan_file.parent))
    path = folder / plan_file.name
    if not plan_file.name or plan_file.name in (".", ".."):
        raise ConfigError(f"--plan {plan_file}: not a file name")
    if not folder.is_dir():
        raise ConfigError(f"--plan {plan_file}: the folder {folder} does not exist")
    for label, root in (
        ("source", settings.source),
        ("destination", settings.dest),
        ("quarantine", settings.quarantine),
    ):
        if folder == root or root in folder.parents:
            raise ConfigError(f"--plan {plan_file} is inside the {label} {root}: put it elsewhere")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--plan {plan_file}: the folder {folder} is not writable")
    if path.is_dir():
        raise ConfigError(f"--plan {plan_file} is a folder")
    return path
