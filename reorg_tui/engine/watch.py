"""Finding work: a streaming scan of the source (the truth) and watchdog events (hints).

A full scan runs at start and every poll interval, so a dropped event, an inotify overflow or a
network filesystem never strands a file.  Events only make things faster.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from reorg_tui.engine.dirs import open_below
from reorg_tui.engine.errors import NO_DESCRIPTORS
from reorg_tui.engine.naming import Naming

log = logging.getLogger(__name__)
DESCRIPTOR_WAIT = 10.0  # seconds a scan waits for a free descriptor before it skips a folder
T = TypeVar("T")


class _ShutdownNoise(logging.Filter):
    """watchdog logs an error when its emitter is read after stop(); nothing is wrong then."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_ShutdownNoise())

try:
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
except ImportError:  # another watchdog layout: its default stands
    pass
else:
    # watchdog holds an unmatched IN_MOVED_FROM for 0.5 s to pair it with its IN_MOVED_TO, and
    # every later event waits behind it. Each file this engine moves out of the source is such
    # an event, so under a steady stream every hint arrived up to half a second late. Pairing
    # only matters for renames inside the source, which the scan treats as new names anyway.
    InotifyMoveEventGrouper.delay = 0.02
HINT_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileClosedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]
MAX_HINTS = 50_000  # beyond this, drop the hints and rescan: the scan is the truth anyway


@dataclass
class ScanCount:
    ignored: int = 0
    taken: int = 0
    folders: int = 0  # listed, the source itself included
    held: dict[str, int] = field(default_factory=dict)  # folders below left to another instance: pid
    other_shards: int = 0  # wanted names that --shard leaves to the other shards


def scan(
    root: str,
    naming: Naming,
    recursive: bool,
    count: ScanCount,
    others: dict[tuple[int, int], int] | None = None,
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative path, lstat) of every regular file the naming wants, as it is listed.

    ``others``: (st_dev, st_ino) -> pid of the folders other processes hold a flock on (another
    instance's source, lock.py): not walked into, and listed in ``count.held``.

    Streams: the first file comes out before a large folder has been listed to the end.
    Symlinks, FIFOs, sockets and devices are never opened or followed; subfolders are opened
    relative to their parent with no-follow, so one swapped for a symlink is not walked into.
    """
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        log.warning("cannot list %s: %s", root, exc.strerror)
        return
    try:
        yield from _scan_below(top, root, naming, recursive, count, others or {})
    finally:
        os.close(top)


def _scan_below(
    top: int,
    root: str,
    naming: Naming,
    recursive: bool,
    count: ScanCount,
    others: dict[tuple[int, int], int],
) -> Iterator[tuple[str, os.stat_result]]:
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            fd = _waiting_for_descriptors(open_below, top, rel_dir)
        except OSError as exc:
            log.warning("cannot list %s: %s", os.path.join(root, rel_dir), exc.strerror)
            continue
        count.folders += 1
        dev = os.fstat(fd).st_dev if others else 0  # a subfolder's inode is its entry's; its device, ours
        try:
            it = _waiting_for_descriptors(os.scandir, fd)
        except OSError as exc:
            os.close(fd)
            log.warning("cannot list %s: %s", os.path.join(root, rel_dir), exc.strerror)
            continue
        try:
            with it:
                for entry in it:
                    name = entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if recursive and not naming.is_ignored(name):
                                rel = f"{rel_dir}/{name}" if rel_dir else name
                                holder = others.get((dev, entry.inode())) if others else None
                                if holder is None:
                                    stack.append(rel)
                                else:
                                    count.held[rel] = holder
                            continue
                        if not naming.wants(name):
                            count.ignored += 1
                            continue
                        rel = f"{rel_dir}/{name}" if rel_dir else name
                        if not naming.owns(rel):
                            count.other_shards += 1  # another instance's: not even looked at
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        count.ignored += 1
                        continue
                    count.taken += 1
                    yield rel, st
        finally:
            os.close(fd)


def _waiting_for_descriptors(action: Callable[..., T], *args: object) -> T:
    """``action(*args)``, tried again while the process has no descriptor free (EMFILE, ENFILE: the
    copies in flight close theirs soon), for up to DESCRIPTOR_WAIT seconds: a folder skipped for
    want of one would leave its files behind for a whole scan, and for good under --once."""
    deadline = time.monotonic() + DESCRIPTOR_WAIT
    while True:
        try:
            return action(*args)
        except OSError as exc:
            if exc.errno not in NO_DESCRIPTORS or time.monotonic() >= deadline:
                raise
        time.sleep(0.02)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                self.watcher.request_scan()
            return
        kind = event.event_type
        if kind in ("created", "modified", "closed"):
            self.watcher.hint(os.fsdecode(event.src_path))
        elif kind == "moved":
            self.watcher.hint(os.fsdecode(event.dest_path))


class _OverflowLog(logging.Handler):
    """watchdog reports a kernel queue overflow only as a log record; turn it into a rescan."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(logging.WARNING)
        self.watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.watcher.overflowed()


class Watcher:
    """Owns the watchdog observer; restarts it when it dies; degrades to polling when it can't."""

    def __init__(
        self,
        root: str,
        recursive: bool,
        on_hint: Callable[[], None],
        on_scan_request: Callable[[], None],
        on_warning: Callable[[str], None],
    ) -> None:
        self.root = root
        self.recursive = recursive
        self.on_hint = on_hint
        self.on_scan_request = on_scan_request
        self.on_warning = on_warning
        self.mode = "off"
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._lock = threading.Lock()
        self._hints: set[str] = set()
        self._overflow_log = _OverflowLog(self)
        self.restarts = 0

    def start(self) -> None:
        logging.getLogger("watchdog.observers.inotify_c").addHandler(self._overflow_log)
        self._start_observer()

    def _start_observer(self) -> None:
        observer = Observer()
        try:
            # No modify events: a writer makes one per write, and its close (or, for a file
            # linked or renamed in, its create or move) is what tells us to look.
            observer.schedule(_Handler(self), self.root, recursive=self.recursive, event_filter=HINT_EVENTS)
            observer.start()
        except OSError as exc:
            self.mode = f"polling (events unavailable: {exc.strerror or exc})"
            self.on_warning(f"file events unavailable for {self.root} ({exc}); relying on rescans")
            self._observer = None
            return
        self._observer = observer
        self.mode = type(observer).__name__.replace("Observer", "").lower() or "events"

    def check(self) -> None:
        """Notice a dead observer thread and start a new one (with a rescan, events were lost)."""
        observer = self._observer
        if observer is None or observer.is_alive():
            return
        self.restarts += 1
        self.on_warning(f"the file-event watcher stopped; restarting it (restart {self.restarts})")
        self._start_observer()
        self.on_scan_request()

    def check_coverage(self, folders: int) -> None:
        """After a full scan that listed ``folders`` folders: are they all watched? watchdog
        skips a subfolder it cannot watch without a word, so ask the kernel how many watches
        this process holds. Short of the watch limit, say so once; rescans cover the rest."""
        if self._observer is None or not self.recursive:
            return
        held = watches_held()
        if held is None or held >= folders:
            if self.mode.startswith("inotify, partial"):
                self.mode = "inotify"
            return
        if not self.mode.startswith("inotify, partial"):
            limit = _read_int("/proc/sys/fs/inotify/max_user_watches")
            self.on_warning(
                f"inotify watch limit reached (fs.inotify.max_user_watches = {limit}): {held} of "
                f"{folders} folders watched; files in the rest are found by the rescan"
            )
        self.mode = f"inotify, partial: {held} of {folders} folders"

    def stop(self) -> None:
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(self._overflow_log)
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=2)
        self.mode = "off"

    def hint(self, path: str) -> None:
        """Something happened to ``path``: worth a look (whether it is ready is the engine's
        call: a close is no proof, since a writer may reopen the file)."""
        rel = os.path.relpath(path, self.root)
        if rel.startswith(".."):
            return
        with self._lock:
            if len(self._hints) >= MAX_HINTS:
                self._hints.clear()
                overflow = True
            else:
                self._hints.add(rel)
                overflow = False
        if overflow:
            self.overflowed()
        else:
            self.on_hint()

    def overflowed(self) -> None:
        self.on_warning("file events were lost (queue overflow); rescanning the source")
        self.on_scan_request()

    def request_scan(self) -> None:
        self.on_scan_request()

    def take_hints(self) -> set[str]:
        with self._lock:
            hints, self._hints = self._hints, set()
        return hints


def watches_held() -> int | None:
    """How many inotify watches this process holds, from /proc/self/fdinfo (None if unknown)."""
    total = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                total += sum(1 for line in info if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None
