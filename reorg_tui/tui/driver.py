"""Textual's Linux driver, made to survive its terminal closing.

When the terminal goes (its window closed, an ssh link dropped), every write to it fails with
EIO. Textual's writer thread dies of the first, and its queue of 30 writes then fills: the next
write blocks for ever, and the app, restoring the terminal on its way out, never exits, so the
engine never lets go and the demo never cleans up. Here a write with no writer left to take it is
dropped: there is nothing to draw on. (The writer's queue is a private attribute: textual is
pinned exactly in pyproject.toml.)
"""

from __future__ import annotations

import queue
from typing import Any

from textual import events
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver


class HangupSafeDriver(LinuxDriver):
    def write(self, data: str) -> None:
        writer = self._writer_thread
        if writer is None:
            super().write(data)
            return
        while writer.is_alive():
            try:
                writer._queue.put(data, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        writer = self._writer_thread
        if writer is not None and writer.is_alive():
            super().close()


def arrive(app: App[Any], key: str) -> None:
    """``key`` arriving as a terminal's keys arrive (the benchmark's keystrokes): posted to the
    app, nothing waited for (``Pilot.press`` waits for the whole app to go idle after each)."""
    app.post_message(events.Key(key, key if len(key) == 1 else None))
