"""systemd's notify protocol (``Type=notify``), with the standard library only.

systemd passes ``NOTIFY_SOCKET`` (a unix datagram socket; a leading ``@`` is the abstract
namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. The headless runner sends ``READY=1``
once the source is held and the stages run, ``WATCHDOG=1`` at half the watchdog interval for as
long as the engine answers, and ``STOPPING=1`` when it starts to drain. Without the variable
(supervisord, a terminal) nothing is sent. A send that fails is dropped: the daemon's work does
not depend on systemd hearing it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        usec: int | None = None
        # WATCHDOG_PID, when set, names the process meant to feed it (not a child we started).
        if env.get("WATCHDOG_PID") in (None, "", str(os.getpid())):
            with contextlib.suppress(ValueError):
                usec = int(env.get("WATCHDOG_USEC", "")) or None
        return cls(address, usec)

    @property
    def active(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two WATCHDOG=1: half of what systemd allows, as sd_watchdog_enabled
        advises."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def send(self, *assignments: str) -> None:
        if self.address is None:
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(assignments).encode(), self.address)
