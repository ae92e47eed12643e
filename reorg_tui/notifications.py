"""Notifications through Apprise: what an operator wants to hear about without watching.

Sent (``--notify URL``, repeatable): an alert raised and cleared; intake paused and resumed for
disk; the file-event watcher degraded to polling and back; a stop with files left unmoved. With
``--notify-digest``, a summary every period instead of each event (moved, failed, quarantined,
what still waits, and what was raised meanwhile).

A move never waits on a notification: events are turned into messages on the bus's thread (a
few operations each) and queued (``QUEUED`` at most; beyond that the oldest are dropped and
counted); one thread of their own sends them, each URL separately, retrying one that fails with
backoff. A URL that keeps failing is logged once when it starts and once when it works again,
not at every try. URLs are secrets (tokens, passwords): they are logged and shown only as their
scheme, and Apprise's own log (which may print them) is silenced.

Threads: the bus's threads call ``events``; the notifier's own thread pulls snapshots (every
``LOOK_SECONDS``) and sends; the face calls ``start`` and ``stop``.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reorg_tui import logs
from reorg_tui.config import ConfigError, Settings
from reorg_tui.engine import Engine, Snapshot
from reorg_tui.engine import events as ev
from reorg_tui.engine.alerts import span
from reorg_tui.names import safe

log = logging.getLogger(__name__)

QUEUED = 200  # messages waiting to be sent; beyond, the oldest go
LOOK_SECONDS = 2.0  # how often the snapshot is looked at (the watcher's mode, the digest's clock)
FIRST_RETRY = 2.0
LAST_RETRY = 300.0
STOP_SECONDS = 5.0  # what a stop gives the messages still queued, at most


class Level(StrEnum):
    """Apprise's notify types, by name."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    level: Level


class NotifyError(ConfigError):
    """A --notify URL that Apprise cannot use (the message names its scheme only): exit 2."""


def scheme(url: str) -> str:
    """What a URL may be shown as: its scheme, never its tokens."""
    head, sep, _ = url.partition("://")
    return f"{head}://..." if sep and head.isalnum() else "a URL"


@dataclass
class _Target:
    """One URL: its Apprise object, the messages it has not had yet (oldest first), and its
    backoff while it fails. Each URL has its own queue: one that is down never holds up another."""

    shown: str
    apprise: Any
    queue: collections.deque[Message] = field(default_factory=lambda: collections.deque(maxlen=QUEUED))
    failing: bool = False
    failures: int = 0
    delay: float = 0.0  # the wait before the next try, doubled at each failure
    retry_at: float = 0.0  # monotonic


def targets(urls: tuple[str, ...]) -> list[_Target]:
    """One Apprise object per URL (so a retry resends only to the one that failed); a URL
    Apprise does not know raises NotifyError. Apprise is imported here, only when asked for."""
    import apprise  # about 0.4 s of imports: paid only by a run with --notify

    quiet = logging.getLogger("apprise")  # its lines can hold the URLs: never to our log
    quiet.propagate = False
    quiet.disabled = True
    made = []
    for number, url in enumerate(urls, 1):
        target = apprise.Apprise()
        if not target.add(url):
            raise NotifyError(f"--notify #{number} ({scheme(url)}) is not a URL Apprise can send to")
        made.append(_Target(scheme(url), target))
    return made


@dataclass
class _Digest:
    """What happened since the last summary."""

    started: float
    moved: int = 0
    failed: int = 0
    quarantined: int = 0
    raised: list[str] = field(default_factory=list)


class Notifications:
    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        source: str,
        digest: float = 0.0,
        snapshot: Callable[[], Snapshot] | None = None,
    ) -> None:
        self._targets = targets(urls)
        self._digest_seconds = digest
        self._snapshot = snapshot
        self._where = f"{socket.gethostname()}: {source}"
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.dropped = 0  # messages the bounded queue let go
        self.sent = 0  # messages delivered to every URL
        self._watcher: str | None = None
        self._digest = _Digest(time.monotonic())
        self._last: Snapshot | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Notifications | None:
        """The run's notifications, or None without --notify. Made before the engine starts, so
        that a URL Apprise cannot use stops the start with one line (exit 2)."""
        if not settings.notify:
            return None
        return cls(settings.notify, source=str(settings.source), digest=settings.notify_digest)

    def retarget(self, urls: tuple[str, ...], digest: float) -> None:
        """New URLs and digest period (a reload): NotifyError, and nothing changed, for a URL
        Apprise cannot use. What is queued goes to the new URLs."""
        made = targets(urls)
        with self._wake:
            queued: list[Message] = []
            for target in self._targets:  # what any URL had still to get, each once, in order
                queued += [m for m in target.queue if not any(m is q for q in queued)]
            for target in made:
                target.queue.extend(queued)
            self._targets, self._digest_seconds = made, digest
            self._wake.notify()

    def attach(self, engine: Engine) -> None:
        """Hear the engine's events and look at its snapshot (before its run starts)."""
        self._snapshot = engine.snapshot
        engine.subscribe(self.events)

    # ---- fed by the faces and the bus ---------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reorg-notify", daemon=True)
        self._thread.start()

    def events(self, events: list[ev.Event]) -> None:
        """The bus's subscriber: only the few kinds that make a message; quick for the rest."""
        for event in events:
            if type(event) is ev.Alert:
                self._alert(event)
            elif type(event) is ev.Paused and event.reason == "disk":
                self._event(
                    Level.WARNING, "intake paused", "the destination is short of space: intake paused"
                )
            elif type(event) is ev.Resumed and event.reason == "disk":
                self._event(Level.SUCCESS, "intake resumed", "the destination has room again: intake resumed")

    def stop(self, final: Snapshot | None = None, left: int = 0) -> None:
        """The run has ended: say so if files were left unmoved, send what is queued (for
        ``STOP_SECONDS`` at most), and end the thread."""
        if final is not None:
            waiting = max(final.queues.waiting, left)
            if self._digest_seconds:
                self._summary(final, closing=True)
            if final.failure:  # a thread of the engine died: the run stopped (exit 70)
                self._put(Message(self._title("stopped on a failure"), final.failure, Level.FAILURE))
            if waiting:
                self._put(Message(
                    self._title("stopped with files left"),
                    f"the daemon stopped with {waiting} file(s) not moved; they stay in the source",
                    Level.WARNING,
                ))  # fmt: skip
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS + 1)

    # ---- messages -----------------------------------------------------------------------------

    def _title(self, what: str) -> str:
        return f"reorg-tui {what} ({self._where})"

    def _alert(self, alert: ev.Alert) -> None:
        if self._digest_seconds:
            if alert.active:
                self._digest.raised.append(alert.message)
            return
        if alert.active:
            self._put(Message(self._title(f"alert: {alert.name}"), alert.message, Level.FAILURE))
        else:
            self._put(Message(self._title(f"recovered: {alert.name}"), alert.message, Level.SUCCESS))

    def _event(self, level: Level, what: str, body: str) -> None:
        if self._digest_seconds:
            self._digest.raised.append(body)
        else:
            self._put(Message(self._title(what), body, level))

    def _look(self) -> None:
        """The snapshot, every LOOK_SECONDS: the watcher's mode, and the digest when due."""
        if self._snapshot is None:
            return
        snap = self._snapshot()
        mode = snap.watcher
        degraded = mode.startswith(("polling", "degraded"))
        if self._watcher is not None and degraded != self._watcher.startswith(("polling", "degraded")):
            if degraded:
                self._event(
                    Level.WARNING, "watcher degraded", f"file events stopped; found by rescans only: {mode}"
                )
            else:
                self._event(Level.SUCCESS, "watcher restored", f"file events work again ({mode})")
        self._watcher = mode
        if self._digest_seconds and time.monotonic() - self._digest.started >= self._digest_seconds:
            self._summary(snap)

    def _summary(self, snap: Snapshot, closing: bool = False) -> None:
        before, now = self._last, snap.totals
        moved = now.moved - (before.totals.moved if before else 0)
        failed = now.failed_attempts - (before.totals.failed_attempts if before else 0)
        quarantined = now.quarantined - (before.totals.quarantined if before else 0)
        self._last = snap
        q = snap.queues
        waiting = q.waiting
        lines = [
            f"moved {moved}, failed attempts {failed}, quarantined {quarantined}",
            f"waiting: {waiting} ({q.settling} settling, {q.ready} ready, {q.retry} to retry)",
            f"in quarantine: {snap.quarantine.count}",
        ]
        if snap.waiting:
            first = snap.waiting[0]
            lines.append(f"oldest waiting: {safe(first.path)}, {span(snap.oldest_pending_age)} ({first.why})")
        if snap.retry_head:
            oldest = snap.retry_head[0]
            lines.append(f"next retry: {safe(oldest.path)} ({safe(oldest.last_error)})")
        if snap.alerts:
            lines.append("alerts now: " + "; ".join(snap.alerts))
        if self._digest.raised:
            lines.append("meanwhile: " + "; ".join(self._digest.raised[-10:]))
        self._digest = _Digest(time.monotonic())
        self._put(
            Message(self._title("final summary" if closing else "summary"), "\n".join(lines), Level.INFO)
        )

    def _put(self, message: Message) -> None:
        with self._wake:
            for target in self._targets:
                if len(target.queue) == target.queue.maxlen:
                    self.dropped += 1  # the oldest goes
                target.queue.append(message)
            self._wake.notify()

    # ---- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        next_look = 0.0
        deadline: float | None = None  # once stopping: what is queued gets this long, one try each
        while True:
            now = time.monotonic()
            with self._wake:
                stopping = self._stopping
            if stopping and deadline is None:
                deadline = now + STOP_SECONDS
            if now >= next_look and not stopping:
                try:
                    self._look()
                except Exception:  # never the end of the thread (nor of the run)
                    log.exception("notifications: could not look at the snapshot")
                next_look = now + LOOK_SECONDS
            with self._wake:
                due = [t for t in self._targets if t.queue and (stopping or t.retry_at <= now)]
                if not due:
                    if stopping or (deadline is not None and now >= deadline):
                        return
                    waits = [t.retry_at for t in self._targets if t.queue]
                    self._wake.wait(max(0.0, min([next_look, *waits]) - now))
                    continue
            for target in due:
                if deadline is not None and time.monotonic() >= deadline:
                    return  # a stop waits for no URL past STOP_SECONDS
                message = target.queue[0]
                delivered = self._send(target, message)
                with self._wake:
                    # A stop gives each message one try, no backoff.
                    if (delivered or stopping) and target.queue and target.queue[0] is message:
                        target.queue.popleft()
                if delivered:
                    self.sent += 1
                    target.delay = target.retry_at = 0.0
                else:
                    target.delay = min(LAST_RETRY, max(FIRST_RETRY, target.delay * 2))
                    target.retry_at = time.monotonic() + target.delay

    def _send(self, target: _Target, message: Message) -> bool:
        """One try of one message to one URL."""
        try:
            ok = bool(
                target.apprise.notify(body=message.body, title=message.title, notify_type=message.level.value)
            )
        except Exception:  # a plugin's bug is a failed send, never the end of the thread
            ok = False
        if ok:
            if target.failing:
                logs.emit(
                    logging.INFO,
                    "notify-ok",
                    "notifications to %s are delivered again (after %d failed tries)",
                    target.shown,
                    target.failures,
                )
            target.failing, target.failures = False, 0
            return True
        target.failures += 1
        if not target.failing:  # once a failure run, not once a try
            target.failing = True
            logs.emit(
                logging.WARNING,
                "notify-failed",
                "notifications to %s could not be sent; retrying with backoff (moves go on)",
                target.shown,
            )
        return False
