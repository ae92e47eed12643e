"""The control socket, served for real on a unix socket in a short temporary folder."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from reorg_tui.engine.control import SOCKET_NAME, ControlError, ControlServer, Peer, Unreachable, request
from reorg_tui.engine.quarantine import QuarantineError, QuarantineFailed


@pytest.fixture
def served():
    state = Path(tempfile.mkdtemp(prefix="rt-ctl-", dir="/tmp"))  # a unix socket path must be short

    def release(args: dict[str, str], peer: Peer) -> str:
        if args.get("id") != "known":
            raise QuarantineError(f"no quarantined file with id {args.get('id')!r}")
        return "/src/released"

    def broken(args: dict[str, str], peer: Peer) -> str:
        raise PermissionError(1, "Operation not permitted")

    def buggy(args: dict[str, str], peer: Peer) -> str:
        raise ValueError("unforeseen")

    def slow(args: dict[str, str], peer: Peer) -> str:
        time.sleep(1.5)  # a release that copies a large file across filesystems
        return "done"

    def whoami(args: dict[str, str], peer: Peer) -> list[int]:
        return [peer.uid, peer.pid]

    handlers = {
        "ping": lambda *_: "running",
        "release": release,
        "broken": broken,
        "whoami": whoami,
        "slow": slow,
        "buggy": buggy,
    }
    server = ControlServer(state, handlers)
    assert server.start() is None
    yield state
    server.stop()


def raw(state: Path, line: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        sock.connect(str(state / SOCKET_NAME))
        sock.sendall(line)
        return json.loads(sock.makefile("rb").readline())


def test_an_op_with_arguments_and_a_refusal_of_the_same_kind_on_both_sides(served):
    assert request(served, "ping") == "running"
    assert request(served, "release", id="known") == "/src/released"
    with pytest.raises(QuarantineError, match="no quarantined file with id 'other'"):
        request(served, "release", id="other")  # exit code 4 in the asking process too
    with pytest.raises(QuarantineFailed, match="^Operation not permitted$") as refused:
        request(served, "broken")  # the filesystem refused: exit code 1, as it would be here
    assert refused.value.exit_code == 1


def test_a_handler_that_raises_what_no_one_foresaw_is_answered_and_the_server_goes_on(served):
    """An exception that is no refusal (a MoveError, a bug) used to end the control thread: the
    asker got no answer, and the daemon answered no one after."""
    with pytest.raises(ControlError, match="internal error in the running instance: ValueError: unforeseen"):
        request(served, "buggy")
    assert request(served, "ping") == "running"


def test_malformed_requests_get_an_answer_and_the_server_goes_on(served):
    assert raw(served, b"[1, 2]\n") == {"ok": False, "error": "a request is one JSON object"}
    assert raw(served, b'{"op": ["ping"]}\n')["ok"] is False
    assert (
        raw(served, b'{"op": "release", "args": {"id": 7}}\n')["error"] == "args must be an object of strings"
    )
    assert request(served, "ping") == "running"


def test_no_instance_answering_is_unreachable(tmp_path):
    with pytest.raises(Unreachable):
        request(tmp_path, "ping", timeout=0.5)


def test_a_handler_is_told_who_asks_by_the_kernel_not_by_the_request(served):
    """SO_PEERCRED: the uid and pid of the process on the other end, whatever it claims."""
    assert request(served, "whoami", uid="12345") == [os.geteuid(), os.getpid()]


def _send_and_close(state: Path, data: bytes, *, shut: bool = True) -> bytes:
    """Send ``data``, say no more (or, not ``shut``, just hang up), and read what comes back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(state / SOCKET_NAME))
        try:
            sock.sendall(data)
            if shut:
                sock.shutdown(socket.SHUT_WR)
            return sock.makefile("rb").readline()
        except OSError:  # the server hung up on a request too long to read: that is an answer too
            return b""


@pytest.mark.parametrize(
    "data",
    [b'"ping"\n', b"12\n", b"null\n", b"\xff\xfe{\n", b'{"op": "pi', b"[" * 100_000 + b"\n",
     b"x" * (10 << 20), b'{"op": "buggy"}\n', b"\n", b'{"op": "ping", "args": []}\n'],
    ids=["string", "number", "null", "invalid-utf8", "half", "deep", "10MB-no-newline", "handler-bug",
         "empty", "args-list"],
)  # fmt: skip
def test_any_request_gets_at_most_one_line_and_the_next_good_request_is_answered(served, data):
    answer = _send_and_close(served, data)
    if answer:
        reply = json.loads(answer)
        assert reply["ok"] is False and "\n" not in reply["error"]
    assert request(served, "ping") == "running"


def test_a_client_that_sends_half_a_request_and_waits_does_not_hold_the_server(served):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(str(served / SOCKET_NAME))
        idle.sendall(b'{"op": ')
        assert request(served, "ping", timeout=8) == "running"  # answered once the idle one is dropped


def test_an_answer_that_comes_late_is_no_answer_not_no_instance(served):
    """Unreachable means no instance: the caller may then do the work itself. An instance that
    was asked and is slow to answer may be doing it: that is NoAnswer, so nothing is done twice."""
    from reorg_tui.engine.control import NoAnswer, Unreachable

    with pytest.raises(NoAnswer, match="may still be doing it"):
        request(served, "slow", timeout=0.3)
    assert request(served, "slow", timeout=5) == "done"
    with pytest.raises(Unreachable):
        request(served.parent / "nowhere", "ping")
