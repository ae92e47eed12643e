"""Release and delete a quarantined file: one path, whoever asks.

The dashboard hosting the engine calls ``Engine.release`` and ``Engine.delete`` itself. A
dashboard attached to a daemon, and the command line, use ``QuarantineOps``: where a daemon runs
on the source and keeps this quarantine, the request goes to it over its control socket, and it
does the work with that same ``Engine.release`` (it forgets the file's retry entry, counts the
quarantine again and rescans at once, and only one process changes the quarantine). Where no
daemon answers (none runs, or its control socket is off), or it keeps another quarantine, the
store does the work here.
"""

from __future__ import annotations

import os
import stat
from dataclasses import fields
from pathlib import Path
from typing import Any

from reorg_tui.engine.control import ControlError, NotServed, Unreachable, request
from reorg_tui.engine.quarantine import QuarantineError, QuarantineStore, Record


class QuarantineOps:
    def __init__(self, store: QuarantineStore, source: Path | None, state_dir: Path | None) -> None:
        self.store = store
        self.source = source  # where released files go; None: this one only deletes
        self.state_dir = state_dir  # where a daemon on this source answers; None: do not ask

    def release(self, item_id: str) -> str:
        """Put the file back into the source; returns its path there."""
        try:
            return str(self._ask("release", item_id))
        except (Unreachable, NotServed):
            if self.source is None:
                raise QuarantineError("to release a file, name the source it goes back to") from None
            return self.store.release(item_id, self.source)

    def delete(self, item_id: str) -> Record:
        try:
            return _record(self._ask("delete", item_id))
        except (Unreachable, NotServed):
            return self.store.delete(item_id)

    def _ask(self, op: str, item_id: str) -> Any:
        if self.state_dir is None:
            raise Unreachable("no state folder to find a running instance by")
        return request(self.state_dir, op, id=item_id, quarantine=os.path.realpath(self.store.root))


def foreseen_failure(record: Record, dest: str | None = None) -> str | None:
    """Why releasing this file would only quarantine it again, where that can be seen now: its
    date does not exist, or a folder on its way to its destination is a file, or (below ``dest``,
    where folders are opened without following links) a symlink. None when nothing in its way
    can be seen."""
    if record.intended is None:
        if record.original:  # only a date that does not exist leaves no intended destination
            return "its date does not exist, so it will be quarantined again; rename it first"
        return None
    for folder in reversed(Path(record.intended).parents):
        try:
            mode = os.lstat(folder).st_mode
        except OSError:
            return None  # missing: it will be made
        if stat.S_ISLNK(mode):
            if dest is not None and Path(dest) in folder.parents:
                return (
                    f"{folder} is a symlink, which is never followed, so it will be quarantined "
                    "again; put a real folder there first"
                )
        elif not stat.S_ISDIR(mode):
            return (
                f"{folder} is a file, not a folder, so it will be quarantined again; "
                "move that file aside first"
            )
    return None


def _record(data: Any) -> Record:
    known = {f.name for f in fields(Record)}
    if not isinstance(data, dict) or not known.issuperset(data):
        raise ControlError("the running instance answered with something that is not a record")
    try:
        return Record(**data)
    except TypeError:
        raise ControlError("the running instance answered with an incomplete record") from None
