"""The quarantine: files that could not be moved, each with a durable record of why.

Layout, one item per id::

    QUARANTINE/<id>/<original name>     the file, moved here with the safe protocol
    QUARANTINE/<id>.json                its record, for people (and the truth the index is built from)

The record is written before the file moves in, so a crash leaves at worst a record with no
file (the file is still in the source), which ``repair`` removes. A file that arrived is never
removed by a failure after it (clearing its setuid bit, say): it stays, with its record.

``list``, ``get`` and ``stats`` read an index, not the records: the ledger's quarantine rows
(ledger.py), so that listing 50,000 items reads no record, and the daemon's count after every
scan costs one stat and one small query however many items there are. The index is kept true so:
- this store writes both: put (record, file, row), release and delete (file, record, row);
- ``repair``, at the daemon's start, reconciles them: a row whose file is gone is dropped, a
  record with no row is indexed (a lost state folder is rebuilt from the records), an item with
  no record gets one (from its row where it has one);
- another process (a second daemon sharing this quarantine, a command line with no ledger) adds
  and removes records, which moves the folder's mtime. Before each read the store compares it
  (one stat) with the mtime at which the index last matched the folder (its own look's, or the
  one the ledger keeps from any process's look: a command line beside an idle daemon lists
  nothing); when it moved, it lists the folder (names only), indexes the records it has not
  seen and drops the rows whose record is gone. An item file removed by hand, its record left,
  is dropped by the next ``repair``; ``get`` checks the file in any case. A record edited by
  hand in place (the folder's mtime does not move) is not read again.

Without a ledger that indexes it (the command line pointed at a bare quarantine, or given no
source whose state folder holds one: see ``open_store``) the index is in memory, built from the
records on first use: correct, and as slow as reading every record, which the ledger avoids.

Threads: any. The index is the ledger's, which is thread-safe. ``put`` runs on many worker
threads at once (each item has an id of its own); ``release``, ``delete``, ``repair`` and the
catching up hold the store's lock.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import functools
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from reorg_tui.engine.dirs import NotAFolder, Tree, open_child
from reorg_tui.engine.errors import Changed, Conflict, ExitCode, HardLinked, MoveError, ReorgError, Vanished
from reorg_tui.engine.fields import parse_json
from reorg_tui.engine.inputfile import Unfit, UnfitFile, read_regular
from reorg_tui.engine.ledger import LEDGER_NAME, Ledger, LedgerError, TransferKind, memory_ledger, open_ledger
from reorg_tui.engine.lock import flocks_of_others
from reorg_tui.engine.move import STAGING, Mover
from reorg_tui.engine.records import QuarantineStats, Record, plain_id, record_from
from reorg_tui.engine.retry import MAX_ERRORS_KEPT, stamped
from reorg_tui.engine.store import remove_leftovers, write_atomic

log = logging.getLogger(__name__)
__all__ = [
    "QuarantineError",
    "QuarantineFailed",
    "QuarantineStats",
    "QuarantineStore",
    "Record",
    "StuckInQuarantine",
    "open_store",
]
MAX_RECORD_BYTES = 1024 * 1024  # a record keeps at most MAX_ERRORS_KEPT errors: kilobytes
_SETTLED_NS = 1_000_000_000  # a folder mtime younger than this may hide a change in its tick


class QuarantineError(ReorgError):
    """An operation on the quarantine could not be done (unknown id, file gone...)."""

    exit_code = ExitCode.NOT_FOUND


class QuarantineFailed(QuarantineError):
    """The filesystem refused an operation on a quarantined file, or the file is gone (or is
    no longer a regular file in a folder of its own), or a release could not be done (the folder
    it goes back to is a file now, say): one line, exit code 1. The file stays where it was."""

    exit_code = ExitCode.LEFT_BEHIND


class StuckInQuarantine(QuarantineError):
    """The file reached the quarantine, then a later step failed (clearing a setuid bit the
    daemon may not clear, say). It stays there, with its record: it is quarantined, and the
    caller reports why."""

    def __init__(self, record: Record, cause: BaseException) -> None:
        self.record = record
        super().__init__(f"moved into the quarantine as {record.id}, but then: {cause}; it stays there")


def _new_id(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(4)


class QuarantineStore:
    def __init__(
        self, root: Path, *, ledger: Ledger | None = None, verify: bool = False, folders: int = 16
    ) -> None:
        self.root = root
        self.key = os.path.realpath(root)  # the index's name for this quarantine
        # Items are written once and read rarely: a few descriptors are enough.
        self.mover = Mover(Tree(str(root), capacity=folders), verify=verify, kind=TransferKind.QUARANTINE)
        self._lock = threading.Lock()
        self.ledger: Ledger = memory_ledger()
        self._seen_ns: int | None = None  # the folder's mtime when the index last matched it
        # Seconds: a partial copy written to more recently is left by repair (a fleet's shared
        # quarantine: another host's copy in progress, see move.sweep_staging).
        self.kept_younger = 0.0
        self.use(ledger)

    def use(self, ledger: Ledger | None) -> None:
        """Index in ``ledger`` from now on (the engine hands over its own once it holds the
        source); None: in memory, built again from the records on the next read."""
        with self._lock:
            self.ledger = ledger if ledger is not None else memory_ledger()
            self._seen_ns = None
            # Its transfers (into the quarantine, and a release out of it) are journaled there
            # too: a command line's release that a crash cuts short is the next start's to finish.
            self.mover.ledger = ledger

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def file_path(self, record: Record) -> Path:
        return self.root / record.id / record.name

    # ---- in -----------------------------------------------------------------------------------

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
        move raises, with nothing left behind; StuckInQuarantine where the file arrived and a
        step after failed (it stays, indexed, with its record)."""
        now = time.time()
        src = source.path(rel)
        name = rel.rpartition("/")[2]
        try:
            before: os.stat_result | None = os.lstat(src)
        except FileNotFoundError:
            before = None
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
            size=before.st_size if before is not None else 0,
        )
        self.ensure()
        record_path = self.root / f"{record.id}.json"
        write_atomic(record_path, _dump(record))
        try:
            self.mover.move(source, rel, record.id, name, "rename")
        except BaseException as exc:
            if not self._arrived(record, before):
                # Nothing of the file is here: the record and the (empty) folder go. Never more:
                # a folder with a file in it is not removed.
                record_path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    (self.root / record.id).rmdir()
                raise
            record.errors = (record.errors + [stamped(f"quarantined, but then: {exc}", time.time())])[
                -MAX_ERRORS_KEPT:
            ]
            with contextlib.suppress(OSError):
                write_atomic(record_path, _dump(record))
            self._index(record)
            if not isinstance(exc, Exception):
                raise  # a stop or an interrupt goes on; the file stays quarantined
            raise StuckInQuarantine(record, exc) from exc
        self._index(record)
        return record

    def _arrived(self, record: Record, before: os.stat_result | None) -> bool:
        """Whether the file is at its item's name: the source's own inode (a rename), or
        anything else there (a copy the mover did not take back): either way, not to delete."""
        try:
            found = os.lstat(self.file_path(record))
        except OSError:
            return False
        if before is None or (found.st_dev, found.st_ino) != (before.st_dev, before.st_ino):
            where = self.file_path(record)
            log.warning("quarantine %s: %s holds a file after a failed move; kept", self.root, where)
        return True

    def _index(self, record: Record) -> None:
        try:
            self.ledger.quarantine_add(self.key, [record])
        except LedgerError as exc:
            # The record is written: the next catch-up (or repair) indexes it.
            log.warning("quarantine %s: cannot index %s now (%s)", self.root, record.id, exc)

    # ---- reading: the index ---------------------------------------------------------------------

    def list(self, *, limit: int | None = None, offset: int = 0, errors: bool = True) -> list[Record]:
        """Quarantined files, oldest first; ``limit`` None: all of them; ``errors`` False: with
        their error histories left empty, for a listing that does not show them."""
        self.catch_up()
        return self.ledger.quarantine_list(self.key, limit=limit, offset=offset, errors=errors)

    def indexed(self, *, errors: bool = True) -> builtins.list[Record]:
        """What the index holds now, oldest first: ``list`` without looking at the folder."""
        return self.ledger.quarantine_list(self.key, errors=errors)

    def stats(self) -> QuarantineStats:
        """Count, bytes and the oldest time, from the index: no record is read."""
        self.catch_up()
        return self.ledger.quarantine_stats(self.key)

    def get(self, item_id: str) -> Record:
        if not plain_id(item_id):
            raise QuarantineError(f"no quarantined file with id {item_id!r}")
        record = self.ledger.quarantine_get(self.key, item_id)
        if record is None:
            record = self._read(item_id)  # not indexed yet: written a moment ago by another process
        with self._item(record) as folder:
            if not _holds_file(folder, record.name):
                raise QuarantineFailed(f"quarantined file {self.file_path(record)} is missing")
        return record

    @contextlib.contextmanager
    def _item(self, record: Record) -> Iterator[int]:
        """The item's folder, opened afresh below the quarantine's without following a link (as
        every folder below a root is: dirs.py); a folder swapped for a symlink is refused."""
        try:
            with self.mover.tree.folder("") as root:
                folder = open_child(root, record.id, record.id)
        except NotAFolder as exc:
            raise QuarantineFailed(f"quarantine item {record.id}: {exc.strerror}") from None
        except FileNotFoundError:
            raise QuarantineFailed(f"quarantined file {self.file_path(record)} is missing") from None
        try:
            yield folder
        finally:
            os.close(folder)

    def _present(self, record: Record) -> bool:
        """Whether the item's file is there, a regular file in a real folder (no link followed)."""
        try:
            with self.mover.tree.folder("") as root:
                return _item_holds(root, record)
        except OSError:
            return False

    def catch_up(self) -> bool:
        """Index what another process changed in the folder since the last look (one stat when
        nothing did). Returns whether the folder was listed."""
        try:
            mtime_ns = os.stat(self.root).st_mtime_ns
        except OSError:
            return False  # no quarantine yet (or unmounted): the index stays as it was
        if mtime_ns == self._seen_ns:
            return False
        if self.ledger.quarantine_seen(self.key) == mtime_ns:
            self._seen_ns = mtime_ns  # another process's look (the daemon's) found it so
            return False
        with self._lock:
            records, _ = self._listing()
            indexed = self.ledger.quarantine_ids(self.key)
            self.ledger.quarantine_drop(self.key, sorted(indexed - records))
            new, waiting = [], False
            for item_id in records - indexed:
                try:
                    record = self._read(item_id)
                except QuarantineError:
                    continue  # not a record this version wrote: repair deals with it at a start
                if self._present(record):
                    new.append(record)
                else:
                    waiting = True  # its file is on its way (a put under way): look again next time
            self.ledger.quarantine_add(self.key, _listed_order(new))
            settled = time.time_ns() - mtime_ns > _SETTLED_NS
            self._seen_ns = mtime_ns if settled and not waiting else None
            self.ledger.quarantine_saw(self.key, self._seen_ns)
        return True

    def _listing(self) -> tuple[set[str], set[str]]:
        """The ids with a record, and those with an item folder: names only, no file opened."""
        records: set[str] = set()
        folders: set[str] = set()
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return records, folders
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and entry.is_file(follow_symlinks=False):
                if plain_id(name[:-5]):
                    records.add(name[:-5])
            elif name != STAGING and plain_id(name) and entry.is_dir(follow_symlinks=False):
                folders.add(name)
        return records, folders

    def _read(self, item_id: str) -> Record:
        path = self.root / f"{item_id}.json"
        try:
            data = parse_json(read_regular(path, MAX_RECORD_BYTES, follow=False))
        except UnfitFile as exc:
            if exc.problem is Unfit.MISSING:
                raise QuarantineError(f"no quarantined file with id {item_id!r}") from None
            raise QuarantineError(f"record {exc}") from None
        except ValueError as exc:
            raise QuarantineError(f"record {path} is unreadable: {exc}") from None
        record = record_from(data, item_id)
        if isinstance(record, str):
            raise QuarantineError(f"record {path} is not a record this version writes: {record}")
        return record

    # ---- out -----------------------------------------------------------------------------------

    def release(self, item_id: str, source_root: Path) -> str:
        """Put the file back into the source, under a free name; returns its new path.

        Back in the source it goes through the pipeline again with no attempts counted.
        """
        with self._lock:
            record = self.get(item_id)
            # The record's word for where it came from: normalised, so a ".." cannot lead out.
            original = Path(os.path.normpath(record.original or "/"))
            folder = original.parent
            if source_root not in (folder, *folder.parents):
                folder = source_root  # a record from another source: release to this one's top
            below = "" if folder == source_root else str(folder.relative_to(source_root))
            back = Tree(str(source_root), capacity=4, create_root=False)
            self.mover.tree.forget()  # the item's folder as it is now, not a descriptor cached before
            with self._claim(record):
                try:
                    mover = Mover(back, ledger=self.mover.ledger, kind=TransferKind.RELEASE)
                    outcome = mover.move(self.mover.tree, f"{record.id}/{record.name}", below, record.name)
                except (OSError, NotAFolder, MoveError, Vanished, Changed, Conflict, HardLinked) as exc:
                    # The move protocol leaves the file where it was: here, still quarantined.
                    raise QuarantineFailed(
                        f"cannot release {record.id} ({record.name}) into {folder}: {_why(exc)}; "
                        "it stays in the quarantine"
                    ) from None
                finally:
                    back.close()
                try:
                    self._drop(record)
                except OSError as exc:
                    # The file has left, whatever the record says.
                    self.ledger.quarantine_drop(self.key, [record.id])
                    raise QuarantineFailed(
                        f"released {record.id} to {outcome.path}, but its record "
                        f"{self.root / record.id}.json could not be removed ({exc.strerror}): "
                        "remove it by hand"
                    ) from None
            return outcome.path

    def delete(self, item_id: str) -> Record:
        with self._lock:
            record = self.get(item_id)
            with self._claim(record) as folder:
                os.unlink(record.name, dir_fd=folder)
                self._drop(record)
            return record

    @contextlib.contextmanager
    def _claim(self, record: Record) -> Iterator[int]:
        """The item's folder, held against any other process's release or delete of it until
        the file has left and its record with it: daemons may share a quarantine (shards of a
        source, sources with one destination), each lists every item, and the lock above is this
        process's alone. Two releases of one item at once put it back twice. A flock on the
        folder: the second asker is told at once, or finds the item gone once the first is done."""
        with self._item(record) as folder:
            try:
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise QuarantineFailed(
                    f"quarantined file {record.id} ({record.name}) is being released or deleted by "
                    "another process"
                ) from None
            if not _holds_file(folder, record.name):  # released or deleted while we looked
                raise QuarantineFailed(f"quarantined file {self.file_path(record)} is missing")
            yield folder

    def _drop(self, record: Record) -> None:
        """The file has left: its record, its folder (if empty) and its row go. Lock held."""
        (self.root / f"{record.id}.json").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (self.root / record.id).rmdir()
        self.ledger.quarantine_drop(self.key, [record.id])

    # ---- at a start --------------------------------------------------------------------------

    def repair(self) -> int:
        """After a crash, or a lost or new index: remove partial copies and records without
        files, give files without a record one, and make the index match the folder. Returns
        how many leftovers were repaired (indexing records is not counted: it is logged)."""
        with self._lock:
            kept = self.kept_younger
            repaired = self.mover.recover(kept_younger=kept) + remove_leftovers(self.root, kept_younger=kept)
            records, folders = self._listing()
            # Without their error histories: 50,000 of them are decoded only for the few written back.
            rows = {r.id: r for r in self.ledger.quarantine_list(self.key, errors=False)}
            drop: list[str] = []
            add: list[Record] = []
            missing = self._missing(rows.values(), folders)
            for item_id in missing:
                drop.append(item_id)  # released, deleted or lost while no index was kept
                (self.root / f"{item_id}.json").unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    (self.root / item_id).rmdir()
                repaired += 1
            for item_id in sorted(rows.keys() - records - set(missing)):
                whole = self.ledger.quarantine_get(self.key, item_id) or rows[item_id]
                write_atomic(self.root / f"{item_id}.json", _dump(whole))  # its record, from the index
                repaired += 1
            known = set(rows)
            others = functools.cache(flocks_of_others)  # read once, and only if a record lacks its file
            for item_id in records - known:
                try:
                    record = self._read(item_id)
                except QuarantineError:
                    continue  # unreadable: a new record is made below if its file is there
                known.add(item_id)
                if self._present(record):
                    add.append(record)
                elif _put_under_way(record, others):
                    continue  # its file is on its way, by another daemon: the next look indexes it
                else:  # a record whose file never arrived (a crash between the two)
                    (self.root / f"{item_id}.json").unlink(missing_ok=True)
                    repaired += 1
            for item_id in sorted(folders - known):
                found = self._invent(item_id)
                if found is not None:
                    add.append(found)
                    repaired += 1
            self.ledger.quarantine_drop(self.key, drop)
            self.ledger.quarantine_add(self.key, _listed_order(add))  # also marks it as indexed
            self.ledger.quarantine_saw(self.key, None)  # the next look lists it
            self._seen_ns = None
        indexed = len(add) - sum(1 for r in add if r.reason == _NO_RECORD)
        if indexed:
            log.info("quarantine %s: indexed %d file(s) from their records", self.root, indexed)
        return repaired

    def _missing(self, rows: Iterable[Record], folders: set[str]) -> builtins.list[str]:
        """The ids of the rows whose file is not in its item folder (all of them when the
        quarantine's folder cannot be opened): the folder lent once for them all."""
        try:
            with self.mover.tree.folder("") as root:
                return [r.id for r in rows if r.id not in folders or not _item_holds(root, r)]
        except OSError:
            return [r.id for r in rows]

    def _invent(self, item_id: str) -> Record | None:
        """A record for an item folder that has a file and no usable record."""
        folder = self.root / item_id
        files = [f for f in os.scandir(folder) if f.is_file(follow_symlinks=False)]
        if not files:
            return None
        stat = files[0].stat(follow_symlinks=False)
        record = Record(
            id=item_id,
            name=files[0].name,
            original="",
            intended=None,
            reason=_NO_RECORD,
            attempts=0,
            quarantined_at=stat.st_mtime,
            size=stat.st_size,
        )
        write_atomic(self.root / f"{item_id}.json", _dump(record))
        return record


_NO_RECORD = "found in the quarantine without a record"


def open_store(root: Path, state_dir: Path | None) -> QuarantineStore:
    """The store as the command line and an attached dashboard use it, beside a daemon that may
    be running: indexed in the ledger of ``state_dir`` where that ledger indexes this quarantine
    (SQLite's WAL lets both read and write it; a busy ledger is waited for), else in memory.
    Nothing is created in the state folder."""
    ledger: Ledger | None = None
    if state_dir is not None and (state_dir / LEDGER_NAME).exists():
        try:
            ledger = open_ledger(state_dir, create=False)
        except LedgerError:
            ledger = None  # not this user's, or from a newer version: the records still tell all
        else:
            if not ledger.quarantine_indexed(os.path.realpath(root)):
                ledger.close()
                ledger = None
    return QuarantineStore(root, ledger=ledger)


class QuarantineReader(Protocol):
    """What a face lists and shows the quarantine through: a store, or a read-only look."""

    def list(self, *, errors: bool = True) -> builtins.list[Record]: ...
    def get(self, item_id: str) -> Record: ...


class ReadOnlyQuarantine:
    """The quarantine as a read-only viewer (``--read-only``) sees it, writing nothing anywhere:
    the daemon's index read through a read-only look at its ledger, opened for each look (a
    look kept open may not see later commits: ledger_sqlite.read_only). The daemon keeps that
    index up to date (it looks at the folder after every scan). Where no ledger of the state
    folder indexes this quarantine, the records themselves, indexed in this process's memory."""

    def __init__(self, root: Path, state_dir: Path | None) -> None:
        self.root, self.state_dir = root, state_dir
        self.key = os.path.realpath(root)
        self._records = QuarantineStore(root)  # in memory only: the fallback

    def _look(self) -> Ledger | None:
        if self.state_dir is None or not (self.state_dir / LEDGER_NAME).exists():
            return None
        try:
            ledger = open_ledger(self.state_dir, read_only=True)
        except LedgerError:
            return None
        if not ledger.quarantine_indexed(self.key):
            ledger.close()
            return None
        return ledger

    def list(self, *, errors: bool = True) -> builtins.list[Record]:
        ledger = self._look()
        if ledger is None:
            return self._records.list(errors=errors)
        try:
            return ledger.quarantine_list(self.key, errors=errors)
        finally:
            ledger.close()

    def get(self, item_id: str) -> Record:
        ledger = self._look()
        if ledger is None:
            return self._records.get(item_id)
        try:
            record = ledger.quarantine_get(self.key, item_id) if plain_id(item_id) else None
        finally:
            ledger.close()
        if record is None:
            raise QuarantineError(f"no quarantined file with id {item_id!r}")
        return record


def _why(exc: BaseException) -> str:
    """A refused move in words, without Python's decoration."""
    if isinstance(exc, NotAFolder):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    if isinstance(exc, Vanished):
        return "its file vanished, or is no longer a regular file"
    if isinstance(exc, Changed):
        return "its file changed while it was copied"
    return str(exc)


def _dump(record: Record) -> bytes:
    return json.dumps(asdict(record), indent=1).encode()


def _listed_order(records: list[Record]) -> list[Record]:
    """Records in the order the index lists them (oldest first), to be added in that order: the
    folder lists them in no order, and rows inserted in no order scatter the index's pages over
    the ledger's file, so that a listing from a cold cache reads it a page at a time, not ahead."""
    return sorted(records, key=lambda r: (r.quarantined_at, r.id))


def _put_under_way(record: Record, others: Callable[[], dict[tuple[int, int], int]]) -> bool:
    """Whether the file of a record whose file is not there yet may be on its way: a folder
    above where it came from is a source that another live process holds (a daemon sharing
    this quarantine writes the record first, then moves the file in, a copy that may take
    minutes). A crash's leftover has no such holder (its daemon is this one, restarted, or gone)."""
    held = others()
    folder = os.path.dirname(record.original)
    while folder.startswith("/"):
        try:
            st = os.stat(folder)
        except (OSError, ValueError):
            pass
        else:
            if (st.st_dev, st.st_ino) in held:
                return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return False


def _item_holds(root: int, record: Record) -> bool:
    """Whether the item folder of ``record`` right below ``root`` is a real folder (not a link)
    holding its file, a regular file (not a link to one)."""
    try:
        folder = os.open(record.id, _ITEM_FLAGS, dir_fd=root)
    except (OSError, ValueError):
        return False
    try:
        return _holds_file(folder, record.name)
    finally:
        os.close(folder)


# Opened only to look inside: O_PATH needs no read permission and reads nothing.
_ITEM_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _holds_file(folder: int, name: str) -> bool:
    """Whether ``name`` in the folder open as ``folder`` is a regular file (not a link to one)."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except (OSError, ValueError):
        return False
