"""Disk headroom of the destination, and the gate that pauses intake when it runs low."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from reorg_tui.engine.metrics import Disk

HYSTERESIS_PERCENT = 1.0  # resume only once free space is this much above the threshold
LARGE_FILE = 64 * 1024 * 1024  # above this, a copy checks there is room for the file itself


@dataclass(frozen=True)
class Headroom:
    free_bytes: int  # as an unprivileged user sees it (f_bavail)
    total_bytes: int
    free_inodes: int
    total_inodes: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 100.0


def headroom(path: str) -> Headroom:
    st = os.statvfs(path)
    return Headroom(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, st.f_favail, st.f_files)


@dataclass(frozen=True)
class GateView:
    """One reading of the gate: every field from the same check."""

    closed: bool = False
    last: Headroom | None = None
    error: str | None = None
    generation: int = 0


class DiskGate:
    """Open while the destination has at least ``min_free_percent`` free; closes below it and
    reopens only once it is ``HYSTERESIS_PERCENT`` above, so it does not flap.

    A destination that was a mount point at start must stay one: once unmounted, the folder
    underneath is not where files belong, so the gate stays closed until it is mounted again.
    ``generation`` counts changes of the destination's filesystem (a remount), after which
    folder descriptors opened on the old one must not be used.

    Threads: ``check()`` runs in the coordinator (at start, then every 0.25 s) and in pool
    threads (before a large copy, and after a copy that found no room). Any thread reads it,
    the UI's too through ``Engine.snapshot()``. A check runs under ``_lock``, so two checks do
    not interleave; it publishes one frozen ``GateView``, so readers take no lock and never
    wait behind a slow ``statvfs``, and ``view`` gives them closed, last, error and generation
    from the same check.
    """

    def __init__(self, path: str, min_free_percent: float) -> None:
        self.path = path
        self.min_free_percent = min_free_percent
        self.mount_point = os.path.ismount(path)
        self._lock = threading.Lock()
        self.device = _device(path)  # changed under _lock
        self.view = GateView()  # replaced whole, under _lock
        # Copies in flight, and copies finished since the last reading (which it cannot show
        # yet), in bytes and in files (a file is an inode): counted against the minimum, so that
        # no copy starts that would take the destination below it. Under _lock.
        self._held = [0, 0]
        self._spent = [0, 0]

    @property
    def closed(self) -> bool:
        return self.view.closed

    @property
    def last(self) -> Headroom | None:
        return self.view.last

    @property
    def error(self) -> str | None:
        return self.view.error

    @property
    def generation(self) -> int:
        return self.view.generation

    def check(self) -> bool:
        """Refresh the reading; True while intake may go on."""
        with self._lock:
            was = self.view
            self.view = view = self._check(was)
            if view.last is not was.last:  # a fresh reading: it shows the copies finished before it
                self._spent = [0, 0]
        return not view.closed

    def _check(self, was: GateView) -> GateView:
        generation = was.generation
        try:
            if self.mount_point and not os.path.ismount(self.path):
                unmounted = f"destination {self.path} is not mounted: intake waits until it is back"
                return GateView(True, was.last, unmounted, generation)
            device = _device(self.path)
            if device != self.device:
                self.device = device
                generation += 1
            room = headroom(self.path)
        except OSError as exc:
            # An unreachable destination is no place to send files: hold intake until it is back.
            unreadable = f"cannot read free space of {self.path}: {exc.strerror}"
            return GateView(True, was.last, unreadable, generation)
        inodes = 100.0 * room.free_inodes / room.total_inodes if room.total_inodes else 100.0
        floor = self.min_free_percent + (HYSTERESIS_PERCENT if was.closed else 0.0)
        low_inodes = inodes < floor
        closed = room.free_percent < floor or low_inodes
        error: str | None = None
        if low_inodes and room.free_percent >= floor:
            error = (
                f"destination has {room.free_inodes} free inodes ({inodes:.1f}%), "
                f"under the {self.min_free_percent:g}% minimum"
            )
        return GateView(closed, room, error, generation)

    def reserve(self, size: int, inodes: int = 1) -> bool:
        """Asked before a copy: True, and the copy's bytes and inodes are held (its file's, and the
        folders it may make), if the destination
        stays at or above the minimum with it and every copy in flight; False: it must wait.

        The last reading (at most 0.25 s old) is trusted, with the copies since counted against
        it, while the copy would leave more than HYSTERESIS_PERCENT above the minimum; nearer
        the floor, and before a large copy, the reading is taken afresh first: it then also sees
        what no copy holds for (date folders made, another writer on the same disk)."""
        if size < LARGE_FILE:
            with self._lock:
                if self._fits(size, inodes, margin=HYSTERESIS_PERCENT):
                    self._hold(size, inodes)
                    return True
        self.check()
        with self._lock:
            if not self._fits(size, inodes):
                return False
            self._hold(size, inodes)
        return True

    def _hold(self, size: int, inodes: int) -> None:
        self._held[0] += size
        self._held[1] += inodes

    def made_folder(self) -> None:
        """A folder was made on the destination: its inode counts until the next reading."""
        with self._lock:
            self._spent[1] += 1

    def release(self, size: int, inodes: int = 1, *, kept: bool) -> None:
        """A copy reserved with ``reserve`` is over; ``kept``: its bytes stay at the destination
        (until the next reading shows them)."""
        with self._lock:
            self._held[0] -= size
            self._held[1] -= inodes
            if kept:
                self._spent[0] += size
                self._spent[1] += inodes

    def shown(self) -> tuple[Disk, str | None]:
        """The destination's room as the snapshot shows it, and why the gate is closed (or None)."""
        view, minimum = self.view, self.min_free_percent
        room = view.last
        disk = Disk(min_free_percent=minimum)
        if room is not None:
            disk = Disk(
                room.free_bytes,
                room.total_bytes,
                room.free_percent,
                minimum,
                room.free_inodes,
                room.total_inodes,
            )
        if not view.closed:
            return disk, None
        return (
            disk,
            view.error or f"destination has {disk.free_percent:.1f}% free, under the {minimum:g}% minimum",
        )

    def fits(self, size: int) -> bool:
        """Whether a file of ``size`` bytes can be copied without crossing the threshold, counting
        the copies in flight and those since the last reading."""
        with self._lock:
            return self._fits(size, 1)

    def _fits(self, size: int, files: int, margin: float = 0.0) -> bool:
        last = self.view.last
        if last is None:
            return True
        minimum = self.min_free_percent + margin
        if last.total_bytes:
            free = last.free_bytes - self._held[0] - self._spent[0] - size
            if 100.0 * free / last.total_bytes < minimum:
                return False
        if last.total_inodes:
            free_inodes = last.free_inodes - self._held[1] - self._spent[1] - files
            if 100.0 * free_inodes / last.total_inodes < minimum:
                return False
        return True


def _device(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None
