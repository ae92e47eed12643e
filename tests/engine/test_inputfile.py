"""The one way a file named on a user's word is read (engine/inputfile.py): on real files, a FIFO,
a device, a link, a file of another owner and a /proc file whose size lies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reorg_tui.engine.inputfile import Unfit, UnfitFile, read_regular


def _problem(path: Path | str, limit: int = 1024, **kw: object) -> Unfit:
    with pytest.raises(UnfitFile) as caught:
        read_regular(path, limit, **kw)  # type: ignore[arg-type]
    assert isinstance(caught.value, OSError)  # callers that treat OSError as unreadable go on
    assert "\n" not in str(caught.value)
    return caught.value.problem


def test_a_regular_file_up_to_the_limit_is_read_whole(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1024)
    assert read_regular(path, 1024) == b"x" * 1024
    assert _problem(path, 1023) is Unfit.TOO_LARGE


def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opened for reading it would block until a writer came
    assert _problem(tmp_path / "fifo") is Unfit.NOT_REGULAR
    assert _problem("/dev/zero") is Unfit.NOT_REGULAR  # read, it never ends
    assert _problem(tmp_path) is Unfit.FOLDER
    assert _problem(tmp_path / "missing") is Unfit.MISSING


def test_the_read_stops_at_the_limit_whatever_the_size_says():
    """/proc/self/status says it is 0 bytes long and holds more than 64: the cap is on what is
    read, not on what fstat says (a file that grows while it is read is caught the same way)."""
    assert os.stat("/proc/self/status").st_size == 0
    assert _problem("/proc/self/status", limit=64) is Unfit.TOO_LARGE
    assert b"Name:" in read_regular("/proc/self/status", 1 << 20)


def test_a_link_is_not_followed_when_asked_and_an_untrusted_owner_is_refused(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"{}")
    (tmp_path / "link").symlink_to(target)
    assert read_regular(tmp_path / "link", 16) == b"{}"
    assert _problem(tmp_path / "link", follow=False) is Unfit.NOT_REGULAR
    os.chown(target, 12345, 12345)  # root may give a file away: it is then another user's
    assert _problem(target, owners=(os.geteuid(),)) is Unfit.NOT_TRUSTED
    assert read_regular(target, 16, owners=(12345,)) == b"{}"
