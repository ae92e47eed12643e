"""Where a file goes: one answer for the moves and for ``--dry-run``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

from reorg_tui.engine.naming import InvalidDate, Naming
from reorg_tui.engine.settings import EngineSettings
from reorg_tui.engine.watch import ScanCount, scan


class Planned(NamedTuple):
    folder: str  # below the destination, "/"-separated
    name: str
    intended: str  # the whole path it is meant to have (a collision may give it another name)


def plan(naming: Naming, dest: str, rel: str) -> tuple[str, str, str]:
    """The destination of ``rel`` (a path below the source), as a ``Planned``'s fields: a plain
    tuple, made once per file. InvalidDate if its date does not exist."""
    # f-strings, not os.path.join: this runs once per file; the parts are known to be clean.
    name = rel.rpartition("/")[2]
    folder = naming.target(name).folder
    return folder, name, f"{dest}/{folder}/{name}"


class Preview(NamedTuple):
    source: str
    planned: Planned | None  # None: its date does not exist, so it would be quarantined
    problem: str | None  # why not (an invalid date), or None
    exists: bool  # a file of that name is there already: the conflict policy decides
    rel: str  # below the source
    st: os.stat_result  # its lstat as listed: the identity a plan file keeps (planfile.py)


def preview(settings: EngineSettings, count: ScanCount) -> Iterator[Preview]:
    """What a run would do with each file in the source now, touching nothing."""
    naming, source, dest = settings.naming(), str(settings.source), str(settings.dest)
    for rel, st in scan(source, naming, settings.recursive, count):
        src = f"{source}/{rel}"
        try:
            planned = Planned(*plan(naming, dest, rel))
        except InvalidDate as exc:
            yield Preview(src, None, str(exc), False, rel, st)
            continue
        yield Preview(src, planned, None, os.path.lexists(planned.intended), rel, st)
