"""The running instance's state for other processes: ``status``, and dashboards that attach.

About once a second the snapshot and the latest events are written to ``STATE/snapshot.json``,
atomically (a reader sees a whole file, old or new).

What a reader finds there is input (``read_published``): only a regular file (a FIFO, a folder or
a symlink in its place is not opened as one), of a bounded size, whose every field is what this
version writes (fields.py); anything else is ``Unpublished``, with why, never an exception.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reorg_tui.engine import events as ev
from reorg_tui.engine.fields import NUMBER, BadState, Spec, build, parse_json, problems
from reorg_tui.engine.inputfile import Unfit, UnfitFile, read_regular
from reorg_tui.engine.metrics import Snapshot
from reorg_tui.engine.shard import Shard, parse_shard
from reorg_tui.engine.store import write_atomic

STATE_FILE = "snapshot.json"
KEEP_EVENTS = 200
MAX_STATE_BYTES = 16 << 20  # a snapshot with its events is tens of kilobytes
MAX_PID = 1 << 22  # the kernel's largest pid_max


def event_to_dict(event: ev.Event) -> dict[str, Any]:
    return {"kind": event.kind, **asdict(event)}


def event_from_dict(data: object) -> ev.Event | None:
    """An event read back; None for one this version does not know or did not write so."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    cls = ev.BY_KIND.get(data["kind"])
    if cls is None:
        return None
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return build(cls, fields)
    except BadState:
        return None


class Publisher:
    def __init__(self, state_dir: Path, shard: Shard | None = None) -> None:
        self.path = state_dir / STATE_FILE
        self.shard = shard
        self._events: deque[ev.Event] = deque(maxlen=KEEP_EVENTS)
        self._lock = threading.Lock()

    def on_events(self, events: list[ev.Event]) -> None:
        with self._lock:
            self._events.extend(events)

    def publish(self, snap: Snapshot, roots: list[dict[str, Any]] | None = None) -> None:
        """``roots``: each root's label, path and identity (roots.py), for ``status`` to check."""
        with self._lock:
            events = [event_to_dict(e) for e in self._events]
        data = {
            "version": 1,
            "pid": os.getpid(),
            "published_at": time.time(),
            "snapshot": snap.to_dict(),
            "events": events,
            "roots": roots or [],
        }
        if self.shard is not None:
            data["shard"] = str(self.shard)  # which share of the source: `status` checks it
        # No fsync: after a crash a stale or missing status file is the truth anyway.
        write_atomic(self.path, json.dumps(data).encode(), durable=False)


@dataclass(frozen=True)
class Published:
    """The state an instance published, every field checked."""

    pid: int
    published_at: float
    snapshot: Snapshot
    events: tuple[ev.Event, ...]  # those this version knows (an unknown kind is left out)
    roots: object = None  # as published, unchecked: roots.first_replaced takes it as input
    shard: Shard | None = None  # the share of the source it takes (--shard), if not all


@dataclass(frozen=True)
class Unpublished:
    """No state to read: ``missing`` (none was published) or not one this version wrote."""

    why: str
    missing: bool = False


_ENVELOPE = Spec(
    types={"version": (int,), "pid": (int,), "published_at": NUMBER, "snapshot": (dict,), "events": (list,)},
    required=frozenset({"pid", "published_at", "snapshot"}),
    extra=True,
)


def read_published(state_dir: Path) -> Published | Unpublished:
    """The last published state, or why there is none to read."""
    data = _read_json(state_dir)
    if isinstance(data, Unpublished):
        return data
    wrong = problems(data, _ENVELOPE)
    if not isinstance(data, dict):
        return Unpublished(f"{state_dir / STATE_FILE} is not what this version writes: {'; '.join(wrong)}")
    if not wrong and not 0 < data["pid"] < MAX_PID:
        wrong = [f"pid={data['pid']}"]
    if wrong:
        return Unpublished(f"{state_dir / STATE_FILE} is not what this version writes: {'; '.join(wrong)}")
    try:
        snapshot = build(Snapshot, data["snapshot"], "snapshot")
    except BadState as exc:
        return Unpublished(f"{state_dir / STATE_FILE} is not what this version writes: {exc}")
    events = tuple(e for e in map(event_from_dict, data.get("events", ())) if e is not None)
    shard = data.get("shard")
    try:
        parsed = None if shard is None else parse_shard(shard) if isinstance(shard, str) else parse_shard("")
    except ValueError as exc:
        return Unpublished(f"{state_dir / STATE_FILE} is not what this version writes: shard {shard!r} {exc}")
    return Published(data["pid"], float(data["published_at"]), snapshot, events, data.get("roots"), parsed)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The last published state as JSON, its fields unchecked (``read_published`` checks them),
    or None if there is none (or it is unreadable)."""
    data = _read_json(state_dir)
    return data if isinstance(data, dict) and "snapshot" in data else None


def _read_json(state_dir: Path) -> object:
    """The published file's JSON, or Unpublished: only a regular file is read (opened without
    following a link or blocking on a FIFO), and at most MAX_STATE_BYTES of it."""
    path = state_dir / STATE_FILE
    try:
        raw = read_regular(path, MAX_STATE_BYTES, follow=False)
    except UnfitFile as exc:
        if exc.problem is Unfit.MISSING:
            return Unpublished(f"no published state in {state_dir}", missing=True)
        return Unpublished(str(exc))
    try:
        return parse_json(raw)
    except BadState as exc:
        return Unpublished(f"{path} is {exc}")
