"""What a running instance answers on its control socket (see control.py): each op, its
arguments checked, and for each change an operator asks a line in the log saying who asked (the
peer's uid and pid, as the kernel gives them).

Threads: the control server's own; each answer goes through the engine's public methods.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import TYPE_CHECKING

from reorg_tui.engine.control import Handler, NotServed, Peer
from reorg_tui.engine.kinds import State

if TYPE_CHECKING:
    from reorg_tui.engine.engine import Engine

log = logging.getLogger(__name__)


def answers(engine: Engine) -> dict[str, Handler]:
    def pause(_: dict[str, str], peer: Peer) -> State:
        audit("pause_asked", "pause asked by %s", peer)
        engine.pause()
        return engine.state()

    def resume(_: dict[str, str], peer: Peer) -> State:
        audit("resume_asked", "resume asked by %s", peer)
        engine.resume()
        return engine.state()

    def served(args: dict[str, str]) -> str:
        """The item a release or delete names, once it is known to be in the quarantine this
        instance keeps (see operations.py)."""
        if os.path.realpath(args.get("quarantine", "")) != str(engine.settings.quarantine):
            raise NotServed(f"this instance keeps its quarantine in {engine.settings.quarantine}")
        return args.get("id", "")

    def reload(_: dict[str, str], peer: Peer) -> str:
        if engine.reloader is None:
            raise NotServed("this instance does not reload its settings (only the daemon does)")
        audit("reload_asked", "reload asked by %s", peer)
        return engine.reloader()

    return {
        "reload": reload,
        "pause": pause,
        "resume": resume,
        "ping": lambda _, __: engine.state(),
        "release": lambda args, peer: engine.release(served(args), by=str(peer)),
        "delete": lambda args, peer: asdict(engine.delete(served(args), by=str(peer))),
    }


def audit(event: str, message: str, *args: object) -> None:
    """A line in the log for what an operator changed: what, and who asked. The message only
    (names in it are escaped by the log's formatters); the event names it for log shippers."""
    log.info(message, *args, extra={"event": event, "fields": {}})
