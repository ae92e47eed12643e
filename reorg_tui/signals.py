"""The headless face's signals: SIGTERM and SIGINT drain and stop; SIGHUP is logged and ignored.

A Python signal handler runs on the main thread between two of its bytecodes, whatever that
thread holds: a handler that logs, or sets an Event (whose lock the interrupted code may be
inside), can wait forever on a lock it interrupted. So the handler only writes the signal's
number down a non-blocking pipe (no Python lock is taken), and a thread of its own,
``reorg-signals``, reads it, logs and sets ``stop``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from reorg_tui import logs

STOPPING = (signal.SIGTERM, signal.SIGINT)


def install(
    stop: threading.Event, *, hangup_stops: bool = False, on_hangup: Callable[[], object] | None = None
) -> Callable[[], None]:
    """Take SIGTERM, SIGINT and SIGHUP (from the main thread only: elsewhere, nothing); returns
    the function that gives them back. With ``hangup_stops`` (the demo: its terminal closing)
    SIGHUP stops the run as SIGTERM does; with ``on_hangup`` (a reload) SIGHUP calls it, on the
    relay thread; else SIGHUP is logged and ignored."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def note(signum: int, frame: FrameType | None) -> None:
        try:
            os.write(write_fd, bytes([signum]))
        except OSError:  # the pipe is full: signals enough wait to be read
            pass

    previous = {sig: signal.signal(sig, note) for sig in (*STOPPING, signal.SIGHUP)}
    relay = threading.Thread(
        target=_relay, args=(read_fd, stop, hangup_stops, on_hangup), name="reorg-signals", daemon=True
    )
    relay.start()

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_fd)  # the relay reads the end of the pipe, and ends
        relay.join(timeout=1)

    return restore


def _relay(
    read_fd: int, stop: threading.Event, hangup_stops: bool, on_hangup: Callable[[], object] | None
) -> None:
    try:
        while data := os.read(read_fd, 64):
            for signum in data:
                _act(signal.Signals(signum), stop, hangup_stops, on_hangup)
    finally:
        os.close(read_fd)


def _act(
    sig: signal.Signals,
    stop: threading.Event,
    hangup_stops: bool = False,
    on_hangup: Callable[[], object] | None = None,
) -> None:
    if sig == signal.SIGHUP and on_hangup is not None and not hangup_stops:
        logs.emit(logging.INFO, "sighup", "SIGHUP received: reloading the settings")
        try:
            on_hangup()
        except Exception as exc:  # noqa: BLE001 - a reload's bug must not end the signal relay
            logs.emit(logging.ERROR, "reload_failed", "reload failed: %s: %s", type(exc).__name__, exc)
        return
    if sig == signal.SIGHUP and not hangup_stops:
        # There is no reload (settings are read at start), and a HUP from a closing terminal or
        # an operator's habit must not end the daemon silently.
        logs.emit(
            logging.WARNING,
            "sighup",
            "SIGHUP received: ignored (settings are read only at start; restart to apply new ones)",
        )
    elif not stop.is_set():
        logs.emit(logging.INFO, "stopping", "%s received: finishing in-flight moves", sig.name)
        stop.set()
