"""A reload of a running daemon's settings: SIGHUP, or ``reorg-tui reload`` (its control socket).

The settings are read again as at the start (the same flags, the config file, the environment
the process was started with). The engine applies what can change live (engine/reconfigure.py);
the face applies its own (the log level, the notification URLs and digest). Whatever cannot
change while it runs is refused, one log line each, and the value in use is kept. One line says
what changed. A reload whose settings are wrong (a bad value in the edited file) changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import fields, replace

from reorg_tui import logs
from reorg_tui.config import Settings
from reorg_tui.engine import Engine, ReorgError
from reorg_tui.engine.ledger_pg import where
from reorg_tui.engine.reconfigure import Change, shown
from reorg_tui.engine.settings import EngineSettings
from reorg_tui.notifications import Notifications

FACE_LIVE = frozenset({"log_level", "notify", "notify_digest"})


class Reloader:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        read: Callable[[], Settings],
        notes: Notifications | None,
    ) -> None:
        self.engine = engine
        self.settings = settings  # in use now
        self.read = read
        self.notes = notes
        self._lock = threading.Lock()  # one reload at a time (a HUP and a `reload` at once)

    def __call__(self) -> str:
        with self._lock:
            try:
                new = self.read()
            except ReorgError as exc:
                line = f"reload refused: {exc}; the settings in use are kept"
                logs.emit(logging.WARNING, "reload_refused", "%s", line)
                return line
            outcome = self.engine.reconfigure(new)
            changed, refused = list(outcome.changed), list(outcome.refused)
            face = self._face(new, changed, refused)
            engine = {c.name: c.after for c in changed if c.name not in face}  # the face's are in face
            self.settings = replace(self.settings, **engine, **face)
        for change in refused:
            logs.emit(
                logging.WARNING,
                "reload_kept",
                "reload: --%s cannot change while running: kept %s (restart to apply %s)",
                change.name.replace("_", "-"),
                _secret(change, change.before),
                _secret(change, change.after),
            )
        line = "reloaded: " + "; ".join(_said(c) for c in changed) if changed else "reload: nothing changed"
        if refused:
            line += f" ({len(refused)} setting(s) kept: they need a restart)"
        logs.emit(logging.INFO, "reloaded", "%s", line)
        return line

    def _face(self, new: Settings, changed: list[Change], refused: list[Change]) -> dict[str, object]:
        """The face's own settings: the live ones applied, the others refused."""
        applied: dict[str, object] = {}
        engine_fields = {f.name for f in fields(EngineSettings)}
        for f in fields(Settings):
            if f.name in engine_fields:
                continue
            before, after = getattr(self.settings, f.name), getattr(new, f.name)
            if before == after:
                continue
            change = Change(f.name, before, after)
            if f.name not in FACE_LIVE or (f.name.startswith("notify") and self.notes is None):
                refused.append(change)  # (notifications not started at start: a restart starts them)
                continue
            changed.append(change)
            applied[f.name] = after
        if "log_level" in applied:
            logs.set_level(str(applied["log_level"]))
        if self.notes is not None and ("notify" in applied or "notify_digest" in applied):
            urls = applied.get("notify", self.settings.notify)
            digest = applied.get("notify_digest", self.settings.notify_digest)
            try:
                self.notes.retarget(urls, digest)  # type: ignore[arg-type]
            except ReorgError as exc:
                for name in ("notify", "notify_digest"):
                    applied.pop(name, None)
                changed[:] = [c for c in changed if not c.name.startswith("notify")]
                logs.emit(
                    logging.WARNING, "reload_kept", "reload: %s; the notifications in use are kept", exc
                )
        return applied


def _said(change: Change) -> str:
    before, after = _secret(change, change.before), _secret(change, change.after)
    return f"--{change.name.replace('_', '-')} {before} -> {after}"


def _secret(change: Change, value: object) -> str:
    """A value for a log line: notification URLs only as their count (they hold tokens)."""
    if change.name == "notify" and isinstance(value, tuple):
        return f"{len(value)} URL(s)"
    if change.name == "coordinator":
        return where(str(value)) if value else "(none)"  # host/db: never the user or password
    return shown(value)
