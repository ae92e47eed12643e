"""Discrete things that happened, pushed to subscribers (numbers are pulled via snapshot())."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    at: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return _KINDS[type(self)]


@dataclass(frozen=True)
class Moved(Event):
    source: str
    destination: str
    size: int
    seconds: float
    how: str  # moved (rename), copied (across filesystems), twin, deduped
    renamed: bool = False  # its name was taken: ``destination`` has its collision name, name (1).ext


@dataclass(frozen=True)
class Skipped(Event):
    source: str
    existing: str


@dataclass(frozen=True)
class Retried(Event):
    source: str
    attempt: int
    error: str
    delay: float


@dataclass(frozen=True)
class Waiting(Event):
    """No room to move it (a full, or unmounted, destination): it waits, and that is no attempt."""

    source: str
    error: str
    delay: float


@dataclass(frozen=True)
class Quarantined(Event):
    source: str
    reason: str
    attempts: int
    item_id: str


@dataclass(frozen=True)
class Failed(Event):
    """An attempt failed and the file could not even be quarantined: it stays in the source."""

    source: str
    error: str


@dataclass(frozen=True)
class Vanished(Event):
    source: str


@dataclass(frozen=True)
class Paused(Event):
    reason: str


@dataclass(frozen=True)
class Resumed(Event):
    reason: str


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the event kind operators see
    message: str


@dataclass(frozen=True)
class Alert(Event):
    """An alert rule crossed (active) or recovered (not active)."""

    name: str
    message: str
    active: bool


_KINDS: dict[type, str] = {
    Moved: "moved",
    Skipped: "skipped",
    Retried: "retried",
    Waiting: "waiting",
    Quarantined: "quarantined",
    Failed: "failed",
    Vanished: "vanished",
    Paused: "paused",
    Resumed: "resumed",
    Warning: "warning",
    Alert: "alert",
}
BY_KIND: dict[str, type[Event]] = {kind: cls for cls, kind in _KINDS.items()}
