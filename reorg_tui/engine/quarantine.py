"""The quarantine: files that could not be moved, each with a durable record of why.

Layout, one item per id::

    QUARANTINE/<id>/<original name>     the file, moved here with the safe protocol
    QUARANTINE/<id>.json                its record

The record is written before the file moves in, so a crash leaves at worst a record with no
file (the file is still in the source), which ``repair`` removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reorg_tui.engine.dirs import Tree
from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.ledger import TransferKind
from reorg_tui.engine.move import STAGING, Mover
from reorg_tui.engine.retry import MAX_ERRORS_KEPT
from reorg_tui.engine.store import remove_leftovers, write_atomic


class QuarantineError(ReorgError):
    """An operation on the quarantine could not be done (unknown id, file gone...)."""

    exit_code = ExitCode.NOT_FOUND


@dataclass
class Record:
    id: str
    name: str
    original: str  # absolute path in the source it came from
    intended: str | None  # where it was meant to go, if known
    reason: str
    attempts: int
    errors: list[str] = field(default_factory=list)
    quarantined_at: float = 0.0
    first_failed_at: float = 0.0
    size: int = 0

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.quarantined_at)


@dataclass(frozen=True)
class QuarantineStats:
    count: int = 0
    bytes: int = 0
    oldest: float | None = None  # wall-clock time of the oldest item


def _new_id(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(4)


class QuarantineStore:
    def __init__(self, root: Path, *, verify: bool = False) -> None:
        self.root = root
        # Items are written once and read rarely: a few descriptors are enough.
        self.mover = Mover(Tree(str(root), capacity=16), verify=verify, kind=TransferKind.QUARANTINE)
        self._lock = threading.Lock()

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def file_path(self, record: Record) -> Path:
        return self.root / record.id / record.name

    def put(
        self,
        source: Tree,
        rel: str,
        *,
        reason: str,
        intended: str | None,
        attempts: int,
        errors: list[str],
        first_failed_at: float | None = None,
    ) -> Record:
        """Move ``rel`` (below ``source``) into the quarantine with its record. Raises what the
        move raises."""
        now = time.time()
        src = source.path(rel)
        name = rel.rpartition("/")[2]
        record = Record(
            id=_new_id(now),
            name=name,
            original=src,
            intended=intended,
            reason=reason,
            attempts=attempts,
            errors=list(errors)[-MAX_ERRORS_KEPT:],
            quarantined_at=now,
            first_failed_at=first_failed_at or now,
            size=os.lstat(src).st_size if os.path.lexists(src) else 0,
        )
        self.ensure()
        record_path = self.root / f"{record.id}.json"
        write_atomic(record_path, _dump(record))
        folder = self.root / record.id
        try:
            self.mover.move(source, rel, record.id, name, "rename")
        except BaseException:
            record_path.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return record

    def _records(self) -> Iterator[Record]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for entry in entries:
            if not entry.name.endswith(".json") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                data = json.loads(Path(entry.path).read_bytes())
                yield Record(**data)
            except (OSError, ValueError, TypeError):
                continue  # written atomically, so only a foreign file looks like this

    def list(self) -> list[Record]:
        """Every quarantined file that is really there, oldest first."""
        items = [r for r in self._records() if self.file_path(r).is_file()]
        return sorted(items, key=lambda r: (r.quarantined_at, r.id))

    def stats(self) -> QuarantineStats:
        items = self.list()
        if not items:
            return QuarantineStats()
        return QuarantineStats(len(items), sum(r.size for r in items), items[0].quarantined_at)

    def get(self, item_id: str) -> Record:
        if "/" in item_id or item_id.startswith("."):
            raise QuarantineError(f"no quarantined file with id {item_id!r}")
        path = self.root / f"{item_id}.json"
        try:
            record = Record(**json.loads(path.read_bytes()))
        except FileNotFoundError:
            raise QuarantineError(f"no quarantined file with id {item_id!r}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise QuarantineError(f"record {path} is unreadable: {exc}") from None
        if not self.file_path(record).is_file():
            raise QuarantineError(f"quarantined file {self.file_path(record)} is missing")
        return record

    def release(self, item_id: str, source_root: Path) -> str:
        """Put the file back into the source, under a free name; returns its new path.

        Back in the source it goes through the pipeline again with no attempts counted.
        """
        with self._lock:
            record = self.get(item_id)
            original = Path(record.original)
            folder = original.parent
            if source_root not in (folder, *folder.parents):
                folder = source_root  # a record from another source: release to this one's top
            below = "" if folder == source_root else str(folder.relative_to(source_root))
            back = Tree(str(source_root), capacity=4, create_root=False)
            try:
                mover = Mover(back, ledger=self.mover.ledger, kind=TransferKind.RELEASE)
                outcome = mover.move(self.mover.tree, f"{record.id}/{record.name}", below, record.name)
            finally:
                back.close()
            self._drop(record)
            return outcome.path

    def delete(self, item_id: str) -> Record:
        with self._lock:
            record = self.get(item_id)
            self.file_path(record).unlink()
            self._drop(record)
            return record

    def _drop(self, record: Record) -> None:
        (self.root / f"{record.id}.json").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (self.root / record.id).rmdir()

    def repair(self) -> int:
        """After a crash: remove partial copies, records without files, and invent records for
        files without one. Returns how many things were repaired."""
        repaired = self.mover.recover() + remove_leftovers(self.root)
        known = set()
        for record in list(self._records()):
            known.add(record.id)
            if not self.file_path(record).is_file():
                self._drop(record)
                repaired += 1
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return repaired
        for entry in entries:
            if entry.name in known or entry.name == STAGING or not entry.is_dir(follow_symlinks=False):
                continue
            files = [f for f in os.scandir(entry.path) if f.is_file(follow_symlinks=False)]
            if not files:
                continue
            stat = files[0].stat(follow_symlinks=False)
            record = Record(
                id=entry.name,
                name=files[0].name,
                original="",
                intended=None,
                reason="found in the quarantine without a record",
                attempts=0,
                quarantined_at=stat.st_mtime,
                size=stat.st_size,
            )
            write_atomic(self.root / f"{entry.name}.json", _dump(record))
            repaired += 1
        return repaired


def _dump(record: Record) -> bytes:
    return json.dumps(asdict(record), indent=1).encode()
