"""The folders an instance works on (its roots), and whether each is still the folder it began with.

Every root is reached through descriptors opened once (dirs.py): after ``mv inbox inbox.old &&
mkdir inbox``, an ``rm -rf`` and ``mkdir`` by a deploy tool, or a mount placed over it, the path
names another folder than the one held. Moving on would list one folder and move through the
other (every file "vanished"), deliver into a folder no one looks at, or keep the ledger in one
that is gone. So each root's identity (``st_dev``, ``st_ino``) is taken at start (the source's
from the very descriptor its lock is on) and compared with a ``stat`` of its path at every scan,
every poll and once a second: a root that is not the same folder stops the run (``RootReplaced``,
exit code 5), and a supervisor's restart takes the folder there now. The identities are published
with the snapshot, so that ``status`` compares them too and never calls a stale instance healthy,
even one that has not noticed yet (frozen, or between two looks).

A destination that was a mount point at start is not checked here: an unmount and a remount there
are the disk gate's (intake pauses, and resumes on the new filesystem). Neither is a quarantine
below it.

Threads: the instance's owner takes the roots; the scanner and the housekeeper check them; any
thread reads ``replaced``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from reorg_tui.engine.errors import ExitCode, ReorgError


@dataclass(frozen=True)
class Root:
    label: str  # "source", "destination", "quarantine", "state folder"
    path: str
    dev: int
    ino: int

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "path": self.path, "dev": self.dev, "ino": self.ino}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Root:
        return cls(str(data["label"]), str(data["path"]), int(data["dev"]), int(data["ino"]))


class RootReplaced(ReorgError):
    """A root is no longer the folder this instance began with (replaced, or removed)."""

    exit_code = ExitCode.ROOT_REPLACED

    def __init__(self, root: Root, *, removed: bool) -> None:
        self.root = root
        self.removed = removed
        held = "it locked" if root.label == "source" else "it began with"
        if removed:
            what = f"was removed while this instance ran: stopped; start it again once {root.path} is back"
        else:
            what = (
                f"was replaced while this instance ran (it is no longer the folder {held}): "
                "stopped; start it again to work on the folder there now"
            )
        super().__init__(f"the {root.label} {root.path} {what}")

    @property
    def short(self) -> str:
        """What ``status`` says of it."""
        how = "removed" if self.removed else "replaced"
        return f"the {self.root.label} {self.root.path} was {how} since it started"


def take(label: str, path: str, st: os.stat_result | None = None) -> Root:
    """The identity of the folder at ``path`` now (or of ``st``, the descriptor's own fstat)."""
    st = st or os.stat(path)
    return Root(label, path, st.st_dev, st.st_ino)


def changed(root: Root) -> RootReplaced | None:
    """Whether the folder at the root's path is another one now. An error other than "no such
    folder" (EIO, ESTALE, EACCES on the way) says nothing either way: the next look decides."""
    try:
        st = os.stat(root.path)
    except (FileNotFoundError, NotADirectoryError):
        return RootReplaced(root, removed=True)
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != (root.dev, root.ino):
        return RootReplaced(root, removed=False)
    return None


class Roots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roots: list[Root] = []
        self.replaced: RootReplaced | None = None  # the first found: it stays

    def hold(self, root: Root) -> None:
        with self._lock:
            self._roots.append(root)

    def check(self) -> RootReplaced | None:
        """The first root found replaced (this look, or an earlier one), if any."""
        if self.replaced is not None:
            return self.replaced
        with self._lock:
            roots = list(self._roots)
        for root in roots:
            found = changed(root)
            if found is not None:
                self.replaced = found
                return found
        return None

    def lost(self, label: str) -> bool:
        """Whether the root ``label`` was found replaced (nothing more is written into its path)."""
        return self.replaced is not None and self.replaced.root.label == label

    def to_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [root.to_dict() for root in self._roots]


def first_replaced(published: object) -> RootReplaced | None:
    """For another process (``status``): the first of the published roots whose path names
    another folder now. Anything malformed is ignored (the file is input)."""
    if not isinstance(published, list):
        return None
    for item in published:
        try:
            root = Root.from_dict(item)
            found = changed(root)  # (a path with a NUL in it: ValueError)
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if found is not None:
            return found
    return None
