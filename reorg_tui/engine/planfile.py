"""The plan file: what ``--dry-run --plan FILE`` saw and would do, for ``apply FILE`` to carry out.

One JSON object, version 1, one entry a line (shown indented here)::

    {"format": "reorg-tui-plan", "version": 1, "created": 1717243200.5,
     "created_iso": "2024-06-01T12:00:00.500000+00:00",
     "source": "/srv/inbox", "dest": "/srv/archive",
     "entries": [
      {"rel": "2024-05-01_a.txt", "source": "/srv/inbox/2024-05-01_a.txt",
       "identity": {"st_dev": 2049, "st_ino": 131, "st_size": 5,
                    "st_mtime_ns": 1714521600000000000, "st_ctime_ns": 1717243100123456789},
       "quarantine": false, "folder": "2024/05/01", "name": "2024-05-01_a.txt",
       "target": "/srv/archive/2024/05/01/2024-05-01_a.txt", "exists": false},
      {"rel": "2024-02-30_b.txt", "source": "/srv/inbox/2024-02-30_b.txt", "identity": {...},
       "quarantine": true, "problem": "2024-02-30 is not a real date"}]}

``rel`` is below ``source``, ``folder`` below ``dest`` ("/"-separated); ``source`` and ``target``
of an entry are the same paths made whole, for people and scripts (they must agree). ``exists``
says the target name was taken when the plan was made. The identity is the lstat when the file
was listed: ``apply`` moves a file only if its name still holds exactly that (ctime catches a
rewrite whose mtime was set back: no writer can set ctime back).

Paths are JSON strings. A file name is bytes; where they are not UTF-8, each undecodable byte is
kept as Python's surrogateescape keeps it (U+DC80 to U+DCFF) and written as the escape
``\\udc80`` .. ``\\udcff``, so ``os.fsencode`` of the string read back gives the exact bytes. The
file itself is valid UTF-8 (other readers see a lone surrogate escape, or U+FFFD).

Reading validates every field of every entry before anything is done with one (``PlanError``,
one line, exit code 2). Threads: the caller's only.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from reorg_tui.engine.errors import ReorgError
from reorg_tui.engine.fields import parse_json
from reorg_tui.engine.inputfile import UnfitFile, read_regular
from reorg_tui.engine.ledger import Identity
from reorg_tui.engine.plan import Preview
from reorg_tui.engine.store import write_atomic

FORMAT = "reorg-tui-plan"
VERSION = 1
MAX_BYTES = 256 * 1024 * 1024  # some 700,000 files at 370 bytes each (it is read whole, then decoded)


class PlanError(ReorgError):
    """The plan file cannot be used as it is: nothing was moved (exit code 2)."""


class Entry(NamedTuple):
    rel: str  # below the plan's source
    identity: Identity
    folder: str | None  # below the plan's destination; None: to the quarantine (``problem``)
    name: str | None
    problem: str | None = None  # why it would be quarantined (an invalid date)
    exists: bool = False  # its target name was taken when planned


class Plan(NamedTuple):
    source: str
    dest: str
    created: float  # Unix time
    entries: tuple[Entry, ...]


def entry(preview: Preview) -> Entry:
    """The plan file's entry for what ``plan.preview`` says of one file."""
    planned = preview.planned
    if planned is None:
        return Entry(preview.rel, Identity.of(preview.st), None, None, preview.problem)
    return Entry(preview.rel, Identity.of(preview.st), planned.folder, planned.name, None, preview.exists)


def to_json(plan: Plan) -> bytes:
    head = {
        "format": FORMAT,
        "version": VERSION,
        "created": plan.created,
        "created_iso": datetime.fromtimestamp(plan.created, UTC).isoformat(),
        "source": plan.source,
        "dest": plan.dest,
    }
    # One entry a line: readable, and a third of the size that indenting every field gives.
    lines = [json.dumps(_entry_doc(plan, e), ensure_ascii=False) for e in plan.entries]
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "entries": [\n' + ",\n".join(lines) + "\n]}\n"
    # ensure_ascii=False keeps names readable; the undecodable bytes (lone surrogates, which
    # UTF-8 cannot carry) become \udcXX escapes, JSON's own spelling of those code points.
    return text.encode("utf-8", "backslashreplace")


def _entry_doc(plan: Plan, e: Entry) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "rel": e.rel,
        "source": f"{plan.source}/{e.rel}",
        "identity": {f"st_{field}": value for field, value in e.identity._asdict().items()},
        "quarantine": e.folder is None,
    }
    if e.folder is None:
        doc["problem"] = e.problem
    else:
        doc.update(folder=e.folder, name=e.name, target=_target(plan.dest, e.folder, e.name or ""))
        doc["exists"] = e.exists
    return doc


def _target(dest: str, folder: str, name: str) -> str:
    return f"{dest}/{folder}/{name}" if folder else f"{dest}/{name}"


def write(path: Path, plan: Plan) -> None:
    """Write the plan whole or not at all (a reader never sees half a plan)."""
    write_atomic(path, to_json(plan))


# ---- reading back ---------------------------------------------------------------------------


def read(path: Path) -> Plan:
    """The plan in ``path``, every field checked; PlanError (one line) otherwise."""
    try:
        data = read_regular(path, MAX_BYTES)  # a FIFO, a device or a huge file: refused
    except UnfitFile as exc:
        raise PlanError(f"plan {exc}") from None
    try:
        doc = parse_json(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PlanError(f"plan {path} is not JSON ({exc})") from None
    return parse(doc, str(path))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def parse(doc: object, where: str) -> Plan:
    """A plan from its decoded JSON: every field of every entry checked first."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlanError(f'plan {where} is not a reorg-tui plan (no "format": "{FORMAT}")')
    version = doc.get("version")
    if version != VERSION or isinstance(version, bool):
        raise PlanError(f"plan {where} has version {version!r}; this reorg-tui reads version {VERSION}")
    source = _root(doc, "source", where)
    dest = _root(doc, "dest", where)
    if _inside(source, dest) or _inside(dest, source):
        raise PlanError(f"plan {where}: source {source} and destination {dest} overlap")
    created = doc.get("created")
    if not isinstance(created, int | float) or isinstance(created, bool) or not math.isfinite(created):
        raise PlanError(f"plan {where}: 'created' must be a number (Unix time)")
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise PlanError(f"plan {where}: 'entries' must be a list")
    seen: set[str] = set()
    parsed = []
    for index, item in enumerate(entries):
        e = _entry(item, source, dest, f"plan {where}: entry {index}")
        if e.rel in seen:
            raise PlanError(f"plan {where}: entry {index}: {e.rel!r} is planned twice")
        seen.add(e.rel)
        parsed.append(e)
    return Plan(source, dest, float(created), tuple(parsed))


def _entry(item: object, source: str, dest: str, where: str) -> Entry:
    if not isinstance(item, dict):
        raise PlanError(f"{where}: not an object")
    rel = _relative(item, "rel", where, may_be_empty=False)
    if _string(item, "source", where) != f"{source}/{rel}":
        raise PlanError(f"{where}: 'source' is not the plan's source joined with 'rel'")
    raw = item.get("identity")
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: 'identity' must be an object")
    identity = Identity(*(_count(raw, f"st_{field}", f"{where}: identity") for field in Identity._fields))
    quarantine = item.get("quarantine")
    if not isinstance(quarantine, bool):
        raise PlanError(f"{where}: 'quarantine' must be true or false")
    if quarantine:
        return Entry(rel, identity, None, None, _string(item, "problem", where))
    folder = _relative(item, "folder", where, may_be_empty=True)
    name = _relative(item, "name", where, may_be_empty=False)
    if "/" in name:
        raise PlanError(f"{where}: 'name' must be a file name, not a path")
    if _string(item, "target", where) != _target(dest, folder, name):
        raise PlanError(f"{where}: 'target' is not the plan's destination joined with 'folder' and 'name'")
    exists = item.get("exists", False)
    if not isinstance(exists, bool):
        raise PlanError(f"{where}: 'exists' must be true or false")
    return Entry(rel, identity, folder, name, None, exists)


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise PlanError(f"{where}: {key!r} must be a string")
    try:
        os.fsencode(value)  # only surrogateescape's U+DC80..U+DCFF stand for bytes
    except UnicodeEncodeError:
        raise PlanError(f"{where}: {key!r} holds a character no file name can") from None
    if "\x00" in value:
        raise PlanError(f"{where}: {key!r} holds a NUL character")
    return value


def _relative(item: dict[str, Any], key: str, where: str, *, may_be_empty: bool) -> str:
    """A "/"-separated path below a root: no empty, "." or ".." part, not absolute."""
    value = _string(item, key, where)
    if not value and may_be_empty:
        return value
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise PlanError(f"{where}: {key!r} must be a plain path below its root, not {value!r}")
    return value


def _root(doc: dict[str, Any], key: str, where: str) -> str:
    value = _string(doc, key, where)
    if not os.path.isabs(value) or os.path.normpath(value) != value or value == "/":
        raise PlanError(f"plan {where}: {key!r} must be an absolute, normalised folder path, not {value!r}")
    return value


def _count(raw: dict[str, Any], key: str, where: str) -> int:
    """A whole number; 0 or more but for times (a file may be dated before 1970)."""
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and not key.endswith("_ns")):
        raise PlanError(
            f"{where}: {key!r} must be a whole number" + ("" if key.endswith("_ns") else ", 0 or more")
        )
    return value


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")
