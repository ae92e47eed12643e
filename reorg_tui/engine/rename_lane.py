"""The rename lane: the common case of a batch (a plain rename on one filesystem) made cheap.

See ``RenameLane``. The full protocol, for every other case, is ``move.Mover``.
"""

from __future__ import annotations

import os
import stat

from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.fileops import (
    SET_ID,
    SourceFile,
    check_renamed,
    try_rename_noreplace,
    writable_by_others,
)
from reorg_tui.engine.move import Mover


class RenameLane:
    """The common case of a batch, made cheap: a regular file renamed on one filesystem to a
    free name in a folder that exists, with nothing built for a file that arrives. Anything else
    (a taken name, a folder to make or gone, another filesystem, an error) is left to
    ``Mover.move``, which handles every case: the lane never decides what a failure means, it
    only declines.

    What a rename moved is looked at afterwards (a name swapped for a symlink since the scan is
    put back) only where someone else could have swapped it: a source folder another user may
    write to, or a file another user owns (and so may chmod). Where only this process's user
    (and root) can change the name, whoever could swap it could as well write the destination
    directly: the look would guard against no one, for a system call a file.

    Source folders (a few) stay lent for the whole batch; a destination folder is lent for one
    rename, so the folder cache's bound on open descriptors holds. ``close`` (or the end of a
    ``with`` block) gives the source folders back."""

    HELD = 16  # source folders held at most, by default; beyond that they are given back and lent afresh

    def __init__(self, mover: Mover, source: Tree, *, held: int = HELD) -> None:
        self.mover = mover
        self.source = source
        self.held = held
        self._sources: dict[str, tuple[int, bool]] = {}  # folder -> (descriptor, others may write it)
        self._euid = os.geteuid()

    def __enter__(self) -> RenameLane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd, _ in self._sources.values():
            self.source.give_back(fd)
        self._sources.clear()

    def move(self, rel: str, folder: str, name: str, st: os.stat_result) -> bool:
        """Rename ``rel`` to ``folder/name``; True if done, False to take the full path."""
        mover = self.mover
        if not stat.S_ISREG(st.st_mode) or st.st_mode & SET_ID:
            return False
        src_dir, _, src_name = rel.rpartition("/")
        held = self._sources.get(src_dir)
        tree = mover.tree
        try:
            if held is None:
                held = self._hold(src_dir)
            dst_fd = tree.lend(folder)  # not made here: a missing folder is declined
        except OSError:
            return False
        src_fd, shared = held
        try:
            with mover.rename_lock:
                failed = try_rename_noreplace(src_fd, src_name, dst_fd, name)
            if failed:
                return False
            if not (shared or st.st_uid != self._euid):
                return True
            try:
                now = os.stat(name, dir_fd=dst_fd, follow_symlinks=False)
            except FileNotFoundError:
                return True  # taken away at once by someone else: it did arrive
            if not stat.S_ISREG(now.st_mode) or now.st_mode & SET_ID:
                check_renamed(SourceFile(src_fd, src_name, self.source.path(rel), st), dst_fd, name)
            return True
        finally:
            tree.give_back(dst_fd)

    def _hold(self, src_dir: str) -> tuple[int, bool]:
        if len(self._sources) >= self.held:
            self.close()
        fd = self.source.lend(src_dir)
        try:
            held = self._sources[src_dir] = (fd, writable_by_others(fd, self._euid))
        except OSError:
            self.source.give_back(fd)
            raise
        return held
