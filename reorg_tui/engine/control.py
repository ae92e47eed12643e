"""The control channel of a running instance: a unix socket only the same user can reach.

The socket lives in the state folder (made 0700) with mode 0600, and every connection's peer is
checked with SO_PEERCRED: only the same user (or root) is served. One JSON line each way:
``{"op": "pause"}`` -> ``{"ok": true, "result": "paused"}``; an op may take string arguments,
``{"op": "release", "args": {"id": "...", "quarantine": "..."}}``. A handler is given the
arguments and the peer (its uid and pid, from SO_PEERCRED: the daemon's log says who asked). A
handler that refuses raises a ``ReorgError`` (or hits an OSError): the reply says why, and which
kind of refusal it was, so the asking side raises the same kind of error (an unknown quarantine
id is ``QuarantineError`` on both sides).

A request is input from another process: at most MAX_REQUEST bytes, read within
REQUEST_SECONDS; anything else (not JSON, not an object, too long, too deep, cut short, a
handler's own bug) gets a one-line refusal or a hang-up, and the server takes the next
connection. Its thread is vital (vital.py): only a fault outside any one request ends it, and
that stops the run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reorg_tui.engine import steps
from reorg_tui.engine.errors import ReorgError
from reorg_tui.engine.fields import parse_json
from reorg_tui.engine.quarantine import QuarantineError, QuarantineFailed
from reorg_tui.engine.vital import Vitals

log = logging.getLogger(__name__)
SOCKET_NAME = "control.sock"
MAX_PATH = 107  # sun_path holds 108 bytes with its terminating NUL
MAX_REQUEST = 64 << 10  # a request is a few hundred bytes: an op and an id or two
CHANGING = frozenset({"pause", "resume", "release", "delete", "reload"})  # what a read-only client is refused
REQUEST_SECONDS = 2.0  # a whole request arrives within this, or the connection is dropped


class BadRequest(ValueError):
    """What a connection sent is not one request this server reads."""


class ControlError(ReorgError):
    """The running instance could not be reached, or refused what was asked (exit code 2)."""


class Unreachable(ControlError):
    """No instance answers on the socket (none runs, or its control socket is off)."""


class NoAnswer(ControlError):
    """Asked, and no answer came in time: the instance may have done it, or be doing it."""


class NotServed(ControlError):
    """The instance does not do this for the one who asks (another quarantine than its own)."""


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection, as the kernel says (not as the request says)."""

    uid: int
    pid: int

    def __str__(self) -> str:
        return f"uid {self.uid} (pid {self.pid})"


Handler = Callable[[dict[str, str], Peer], Any]
# The first that matches names a refusal (a subclass before its base).
_REFUSALS: dict[str, type[ReorgError]] = {
    "failed": QuarantineFailed,
    "not_found": QuarantineError,
    "not_served": NotServed,
}


class ControlServer:
    def __init__(self, state_dir: Path, handlers: dict[str, Handler], vitals: Vitals | None = None) -> None:
        self.path = state_dir / SOCKET_NAME
        self.handlers = handlers
        self.vitals = vitals or Vitals()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> str | None:
        """Start serving; returns a warning instead of raising when the socket cannot be made."""
        if len(os.fsencode(self.path)) > MAX_PATH:
            return f"control socket path {self.path} is too long for a unix socket; remote pause is off"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a killed run: we hold the source lock now
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            return f"cannot make the control socket {self.path}: {exc.strerror}"
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = self.vitals.thread(self._serve, "reorg-control")
        self._thread.start()
        return None

    def stop(self, *, unlink: bool = True) -> None:
        """``unlink``: reach the socket by its name (to wake the accept) and remove it; not when
        the state folder was replaced: the name is in a folder that is not ours now, and the
        accept's timeout ends the thread."""
        self._stop.set()
        if self._sock is not None and unlink:  # a connection of our own wakes the accept() at once
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as knock:
                knock.settimeout(0.5)
                knock.connect(str(self.path))
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            if unlink:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return  # the socket closed by stop()
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.1)  # no descriptor or memory for now: wait, and serve again
                    continue
                raise  # anything else is a death: Vitals stops the run, with one line
            if self._stop.is_set():
                conn.close()
                return
            steps.reached("answering")
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass  # the peer hung up, or took too long: nothing to answer
                except Exception as exc:  # noqa: BLE001 - one request's fault is that request's
                    log.warning("control: a request failed: %s: %s", type(exc).__name__, exc)

    def _answer(self, conn: socket.socket) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        if uid not in (os.geteuid(), 0):
            conn.sendall(b'{"ok": false, "error": "not allowed"}\n')
            return
        try:
            request = _decode(_read_line(conn))
        except BadRequest as exc:
            conn.sendall(json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
            return
        conn.sendall(json.dumps(self._reply(request, Peer(uid, pid))).encode() + b"\n")

    def _reply(self, request: Any, peer: Peer) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is one JSON object"}
        op, args = request.get("op", ""), request.get("args", {})
        handler = self.handlers.get(op) if isinstance(op, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            return {"ok": False, "error": "args must be an object of strings"}
        if request.get("read_only", False) is not False and op in CHANGING:
            return {
                "ok": False,
                "error": f"{op} refused: a read-only client may only look",
                "kind": "refused",
            }
        try:
            return {"ok": True, "result": handler(args, peer)}
        except OSError as exc:  # the filesystem refused: the asking side fails as it would here
            where = f" ({exc.filename})" if exc.filename else ""
            return {"ok": False, "error": f"{exc.strerror or exc}{where}", "kind": "failed"}
        except ReorgError as exc:
            kind = next((k for k, cls in _REFUSALS.items() if isinstance(exc, cls)), "refused")
            return {"ok": False, "error": str(exc), "kind": kind}
        except Exception as exc:  # noqa: BLE001 - a handler's bug: refused, logged, served on
            log.warning("control: %s from %s failed: %s: %s", op, peer, type(exc).__name__, exc)
            error = f"internal error in the running instance: {type(exc).__name__}: {exc}"
            return {"ok": False, "error": error, "kind": "refused"}


def _read_line(conn: socket.socket) -> bytes:
    """One request line: MAX_REQUEST bytes at most, all of it within REQUEST_SECONDS."""
    deadline = time.monotonic() + REQUEST_SECONDS
    data = bytearray()
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BadRequest(f"a request must arrive within {REQUEST_SECONDS:g} s")
        if len(data) > MAX_REQUEST:
            raise BadRequest(f"a request is one line of at most {MAX_REQUEST} bytes")
        conn.settimeout(left)
        try:
            chunk = conn.recv(MAX_REQUEST + 1 - len(data))
        except TimeoutError:
            raise BadRequest(f"a request must arrive within {REQUEST_SECONDS:g} s") from None
        if not chunk:
            break  # the peer is done sending: what came is the request
        data += chunk
    line = bytes(data).partition(b"\n")[0]
    if len(line) > MAX_REQUEST:
        raise BadRequest(f"a request is one line of at most {MAX_REQUEST} bytes")
    return line


def _decode(line: bytes) -> Any:
    if not line.strip():
        raise BadRequest("an empty request")
    try:
        return parse_json(line)
    except ValueError:
        raise BadRequest("a request is one JSON object") from None


CONNECT_SECONDS = 3.0


def request(state_dir: Path, op: str, timeout: float = 30.0, *, read_only: bool = False, **args: str) -> Any:
    """Ask the running instance to do ``op``. Unreachable if no instance answers; a refusal raises
    the kind of error the instance raised (QuarantineError, NotServed), or ControlError. A
    ``read_only`` client (a --read-only dashboard) is refused every op that changes anything."""
    path = state_dir / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_SECONDS)
        try:
            sock.connect(str(path))
        except OSError as exc:  # no socket, or none listening: no instance to ask
            raise Unreachable(f"cannot reach the running instance at {path}: {exc}") from None
        # Asked: from here on the instance may be doing it. No answer is not "no instance" (a
        # caller would then do it itself, a second time, beside the instance still at it).
        sock.settimeout(timeout)
        try:
            asked = {"op": op, "args": args, **({"read_only": True} if read_only else {})}
            sock.sendall(json.dumps(asked).encode() + b"\n")
            reply = json.loads(sock.makefile("rb").readline() or b"{}")
        except (OSError, ValueError) as exc:
            raise NoAnswer(
                f"the running instance at {path} did not answer {op!r} within {timeout:g} s ({exc}): "
                "it may still be doing it; look again before asking again"
            ) from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error", "refused") if isinstance(reply, dict) else "refused"
        kind = reply.get("kind") if isinstance(reply, dict) else None
        raise _REFUSALS.get(str(kind), ControlError)(str(error))
    return reply.get("result")
