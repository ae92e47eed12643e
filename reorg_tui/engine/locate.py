"""Where the instance running on a source keeps its state, found from the source alone.

Every source has a default state folder (``~/.local/state/reorg-tui/<name>-<hash>``). An
instance started with another ``--state-dir`` (a flag, or a config file) writes a pointer there,
``state-dir.json``, when it takes the source, and removes it (and the folder, if that is all it
held) when it lets go: a demo or a benchmark in a temporary folder leaves nothing behind. One
started with the default removes a stale pointer. ``status --source``, ``quarantine
release/delete`` and an attaching dashboard call ``find_state_dir``.

A shard (``--shard K/N``) keeps its state in a sub-folder ``shard-K-of-N`` of the state folder it
is given (or of the default), so that the shards of one source given the same ``--state-dir``
each have their own, side by side, and ``status`` on one finds the others beside it. Its pointer
is ``state-dir.shard-K-of-N.json``: one per shard.

The pointer is input from the filesystem: it is followed only if it is a small regular file (not
a symlink) owned by this user or root, names this very source, and points to an absolute, normal
path. Anything else is ignored and the default is used. Threads: whoever enters the instance
writes it; readers are other processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from reorg_tui.engine.fields import parse_json
from reorg_tui.engine.inputfile import read_regular
from reorg_tui.engine.shard import Shard
from reorg_tui.engine.store import write_atomic

POINTER = "state-dir.json"
_MAX_POINTER_BYTES = 8192


def default_state_dir(source: Path, home: str | None = None) -> Path:
    """The default for ``source``: this user's, or (``home``) the one a service whose user has
    that home gets (systemd sets HOME, not XDG_STATE_HOME)."""
    if home is not None:
        base = os.path.join(home, ".local", "state")
    else:
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    digest = hashlib.sha256(os.fsencode(source)).hexdigest()[:12]
    label = re.sub(r"[^A-Za-z0-9._-]", "_", source.name)[:40] or "root"
    return Path(base) / "reorg-tui" / f"{label}-{digest}"


def shard_state_dir(state_dir: Path, shard: Shard | None) -> Path:
    """The state folder of ``shard`` given the folder ``state_dir`` (itself, unsharded)."""
    return state_dir if shard is None else state_dir / shard.folder


def pointer_name(shard: Shard | None) -> str:
    return POINTER if shard is None else f"state-dir.{shard.folder}.json"


def find_state_dir(source: Path, state_dir: Path | None = None, shard: Shard | None = None) -> Path:
    """The state folder of the instance on ``source`` (a resolved path), or of its ``shard``:
    in ``state_dir`` if one other than the default was given; else where the last instance
    started on it said; else in the default."""
    default = default_state_dir(source)
    if state_dir is not None and state_dir != default:
        return shard_state_dir(state_dir, shard)
    own = shard_state_dir(default, shard)
    return _read_pointer(default / pointer_name(shard), source) or own


def record_state_dir(source: Path, state_dir: Path, shard: Shard | None = None) -> str | None:
    """Called with the source's lock held: leave the pointer (or remove a stale one). Returns a
    warning instead of raising: the daemon runs either way, it is only harder to find."""
    default = default_state_dir(source)
    pointer = default / pointer_name(shard)
    try:
        if state_dir == shard_state_dir(default, shard):
            with contextlib.suppress(FileNotFoundError):
                pointer.unlink()
            return None
        default.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"source": str(source), "state_dir": str(state_dir), "pid": os.getpid()}
        write_atomic(pointer, json.dumps(data).encode(), durable=False)
    except OSError as exc:
        return (
            f"cannot record in {pointer} that this instance keeps its state in {state_dir}: "
            f"{exc.strerror or exc}; `status --source` will need --state-dir {state_dir}"
        )
    return None


def forget_state_dir(source: Path, state_dir: Path, shard: Shard | None = None) -> None:
    """Called before the source's lock is let go: remove this instance's pointer."""
    default = default_state_dir(source)
    if state_dir == shard_state_dir(default, shard):
        return
    with contextlib.suppress(OSError):
        (default / pointer_name(shard)).unlink()
        default.rmdir()  # only if empty: a default folder in use keeps its other files


def _read_pointer(pointer: Path, source: Path) -> Path | None:
    try:  # followed only if it is a regular file of ours (or root's): never a link, never blocking
        raw = read_regular(pointer, _MAX_POINTER_BYTES, follow=False, owners=(os.geteuid(), 0))
    except OSError:  # UnfitFile too
        return None
    try:
        data = parse_json(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("source") != str(source):
        return None
    target = data.get("state_dir")
    if not isinstance(target, str) or "\0" in target or not os.path.isabs(target):
        return None
    if os.path.normpath(target) != target:
        return None
    return Path(target)
