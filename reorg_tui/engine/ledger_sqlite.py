"""The ledger's embedded backend: one SQLite file in the state folder (WAL mode, standard library).

One connection per ledger, shared by the engine's threads under a lock (a batch writes once, so
the lock is held for one transaction a batch). A copy's steps are written with
``synchronous=FULL`` (the copy itself fsyncs, so its row costs little more and survives a power
cut as the copy does); renames, written after the fact a batch at a time, with ``NORMAL``
(durable against a crash of the process; a power cut may forget the last rows, never the files).

The schema is versioned (``PRAGMA user_version``) and migrated on open, one step at a time; a
ledger written by a newer version is refused, not guessed at.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from reorg_tui.engine.fields import a_count, a_time, parse_json
from reorg_tui.engine.ledger import (
    Identity,
    LedgerError,
    LedgerUnreadable,
    LedgerWriteError,
    NoLedger,
    Query,
    RenameRow,
    Step,
    Transfer,
    TransferKind,
    owner_alive,
)
from reorg_tui.engine.records import QuarantineStats, Record, RetryEntry, checked_record

# Each entry takes the schema from version N to N+1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        step TEXT NOT NULL,
        dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
        source BLOB NOT NULL,
        target BLOB NOT NULL,
        started REAL NOT NULL,
        finished REAL,
        staging BLOB,
        copy_ino INTEGER,
        batch TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 1,
        errors TEXT NOT NULL DEFAULT '[]',
        undoes INTEGER,
        owner TEXT NOT NULL DEFAULT '',
        lease REAL
    );
    -- The transfers not finished (a copy's intent, staged or published): what recovery reads.
    -- A table of their ids, not an index on transfers: a rename, written done, pays nothing.
    CREATE TABLE open_transfers (id INTEGER PRIMARY KEY);
    -- No index on times or paths: each costs a rename more than history saves, and history and
    -- undo read the rows in id order (the order they were written), which is time order.
    -- The retry queue. Paths (relative to the source) and texts that may hold a file name are
    -- stored as bytes (any name a filesystem holds); next_try NULL: due at once.
    CREATE TABLE retries (
        path BLOB PRIMARY KEY,
        attempts INTEGER NOT NULL,
        next_try REAL,
        last_error BLOB NOT NULL,
        errors TEXT NOT NULL DEFAULT '[]',
        first_failed REAL NOT NULL
    );
    -- Rows of the queue that were not what this version writes (a ledger edited by hand): out of
    -- the queue, kept for the operator to look at.
    CREATE TABLE retries_aside (
        path, attempts, next_try, last_error, errors, first_failed,
        why TEXT NOT NULL,
        set_aside REAL NOT NULL
    );
    -- The quarantine's index: a copy of each item's record, by its folder and id. Kept in the
    -- order it is listed in (oldest first): a listing of 50,000 reads the table from one end,
    -- not a row at a time through an index.
    CREATE TABLE quarantine (
        root BLOB NOT NULL,
        id TEXT NOT NULL,
        name BLOB NOT NULL,
        original BLOB NOT NULL,
        intended BLOB,
        reason BLOB NOT NULL,
        attempts INTEGER NOT NULL,
        errors TEXT NOT NULL DEFAULT '[]',
        quarantined_at REAL NOT NULL,
        first_failed_at REAL NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (root, quarantined_at, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX quarantine_id ON quarantine (root, id);
    -- Count and bytes of each indexed quarantine, kept by the triggers below: asked for after
    -- every scan, they cost the same for ten items or a million (no COUNT or SUM over the rows).
    -- A row here also says that its quarantine is indexed (repair has run), even when empty;
    -- seen_ns is the folder's mtime when the index last matched its listing (any process's look).
    CREATE TABLE quarantine_totals (
        root BLOB PRIMARY KEY,
        count INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        seen_ns INTEGER
    );
    CREATE TRIGGER quarantine_added AFTER INSERT ON quarantine BEGIN
        INSERT INTO quarantine_totals (root, count, bytes) VALUES (NEW.root, 1, NEW.size)
            ON CONFLICT (root) DO UPDATE SET count = count + 1, bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER quarantine_dropped AFTER DELETE ON quarantine BEGIN
        UPDATE quarantine_totals SET count = count - 1, bytes = bytes - OLD.size WHERE root = OLD.root;
    END;
    CREATE TRIGGER quarantine_resized AFTER UPDATE OF size ON quarantine BEGIN
        UPDATE quarantine_totals SET bytes = bytes - OLD.size + NEW.size WHERE root = NEW.root;
    END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "id, kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target, started, finished,"
    " staging, copy_ino, batch, attempts, errors, undoes, owner, lease"
)
_INSERT = (
    "INSERT INTO transfers (kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target,"
    " started, finished, staging, copy_ino, batch, attempts, errors, undoes, owner, lease)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A rename, done when written: the fewest values bound per row (this runs once per file moved).
# Renames, done when written: many rows a statement, so that a batch costs one step of SQLite
# (and one release of the GIL, which sqlite3 gives up around each step) rather than one a row.
# The sizes are powers of two, so that a handful of statements, compiled once, serve any batch.
_RENAME_VALUES = "(?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')"
_RENAME_COLUMNS = 11
_RENAMES_AT_ONCE = 256  # 2,816 values: well under SQLite's limit of 32,766


@functools.cache
def _insert_renames(count: int) -> str:
    return (
        "INSERT INTO transfers (kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target,"
        " started, finished, batch, owner) VALUES " + ", ".join([_RENAME_VALUES] * count)
    )


class SqliteLedger:
    def __init__(self, path: Path, *, owner: str, create: bool = True) -> None:
        self.path = path
        self.owner = owner
        self._lock = threading.Lock()
        if not create and not path.exists():
            raise NoLedger(f"no ledger at {path}: this source has no recorded moves yet")
        try:
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.OperationalError, LedgerWriteError) as exc:
            # Full, locked, an I/O error: the ledger may well be fine, so it is not set aside.
            self._db.close()
            raise LedgerError(f"cannot use the ledger {path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerUnreadable(
                f"{path} is not a usable ledger ({exc}); move it aside to start afresh"
            ) from None
        except LedgerError:
            self._db.close()
            raise

    @classmethod
    def read_only(cls, path: Path, *, owner: str = "") -> SqliteLedger:
        """The ledger opened only to read it (history): never created, migrated or written.

        SQLite's ``mode=ro`` still makes the ``-wal`` and ``-shm`` files beside a WAL database
        that has none, and leaves them. They exist while a writer has it open (then the reader
        takes part in its locking, and sees each commit); with no ``-wal`` every row is in the
        main file, which is opened ``immutable`` (no locks, no files made). A writer that
        starts during such a read writes into its new ``-wal``, not the main file, until a
        checkpoint (about 4 MB of rows later): so open one per look, not one kept open."""
        if not path.is_file():
            raise NoLedger(f"no ledger at {path}: no transfer has been recorded there yet")
        immutable = not os.path.lexists(f"{path}-wal")
        uri = path.absolute().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
        self = cls.__new__(cls)
        self.path, self.owner, self._lock = path, owner, threading.Lock()
        try:
            self._db = sqlite3.connect(
                uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerUnreadable(f"{path} is not a usable ledger ({exc})") from None
        if version > SCHEMA_VERSION:
            self._db.close()
            raise _too_new(path, version)
        if version == 0:  # made, never migrated: nothing was written into it
            self._db.close()
            raise NoLedger(f"the ledger {path} holds no transfers yet")
        return self

    # ---- schema ------------------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _too_new(self.path, version)
        for step in range(version, SCHEMA_VERSION):
            with self._transaction():
                for statement in _statements(MIGRATIONS[step]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={step + 1}")

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        db = self._db
        try:
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
            finally:
                if durable:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise LedgerWriteError(str(exc)) from None

    @contextlib.contextmanager
    def _as_ledger_error(self) -> Iterator[None]:
        """What the retry queue and the quarantine index meet (a full disk, a ledger locked
        past the busy timeout) as a LedgerError: nothing above the backend knows sqlite3."""
        try:
            yield
        except sqlite3.Error as exc:
            raise LedgerError(f"the ledger {self.path}: {exc}") from None

    # ---- transfers -----------------------------------------------------------------------------

    def record(self, rows: list[Transfer]) -> None:
        if not rows:
            return
        params = [_params(row, self.owner) for row in rows]
        with self._lock, self._transaction():
            for row, values in zip(rows, params, strict=True):
                cursor = self._db.execute(_INSERT, values)
                if row.step.open:
                    self._db.execute("INSERT INTO open_transfers (id) VALUES (?)", (cursor.lastrowid,))

    def record_renames(self, kind: TransferKind, batch: str, rows: list[RenameRow]) -> None:
        if not rows:
            return
        k = kind.value
        values: list[object] = []
        for dev, ino, size, mtime_ns, ctime_ns, source, target, at in rows:
            values += (k, dev, ino, size, mtime_ns, ctime_ns, source, target, at, at, batch)
        with self._lock, self._transaction():
            done = 0
            while done < len(rows):
                count = min(_RENAMES_AT_ONCE, 1 << ((len(rows) - done).bit_length() - 1))
                chunk = values[done * _RENAME_COLUMNS : (done + count) * _RENAME_COLUMNS]
                self._db.execute(_insert_renames(count), chunk)
                done += count

    def begin(self, row: Transfer) -> int:
        with self._lock, self._transaction(durable=True):
            cursor = self._db.execute(_INSERT, _params(row, self.owner))
            if row.step.open:
                self._db.execute("INSERT INTO open_transfers (id) VALUES (?)", (cursor.lastrowid,))
        row.id = cursor.lastrowid
        row.owner = self.owner
        assert row.id is not None
        return row.id

    def advance(
        self,
        row_id: int,
        step: Step,
        *,
        target: bytes | None = None,
        error: str | None = None,
        owner: str | None = None,
    ) -> bool:
        finished = time.time() if not step.open else None
        with self._lock, self._transaction(durable=True):
            found = self._db.execute(
                "SELECT errors FROM transfers WHERE id = ? AND owner = ?", (row_id, owner or self.owner)
            ).fetchone()
            if found is None:
                return False
            errors = _errors(found[0]) + ([error] if error else [])
            self._db.execute(
                "UPDATE transfers SET step = ?, target = COALESCE(?, target), finished = ?,"
                " errors = ?, staging = CASE WHEN ? THEN NULL ELSE staging END WHERE id = ?",
                (step.value, target, finished, json.dumps(errors), not step.open, row_id),
            )
            if not step.open:
                self._db.execute("DELETE FROM open_transfers WHERE id = ?", (row_id,))
        return True

    def open_rows(self) -> list[Transfer]:
        with self._lock:
            cursor = self._db.execute(
                f"SELECT {_COLUMNS} FROM transfers WHERE id IN (SELECT id FROM open_transfers)"
                " AND step IN ('intent', 'staged', 'published') ORDER BY id"
            )
            return [row for row in map(_row, cursor) if row is not None]

    def claim(self, row_id: int, *, lease_seconds: float | None = None) -> bool:
        lease = time.time() + lease_seconds if lease_seconds is not None else None
        with self._lock, self._transaction(durable=True):
            found = self._db.execute("SELECT owner, lease FROM transfers WHERE id = ?", (row_id,)).fetchone()
            if found is None:
                return False
            owner, held_until = found
            expired = held_until is not None and held_until < time.time()
            if owner != self.owner and owner_alive(owner) and not expired:
                return False
            self._db.execute(
                "UPDATE transfers SET owner = ?, lease = ? WHERE id = ?", (self.owner, lease, row_id)
            )
        return True

    def query(self, query: Query) -> list[Transfer]:
        where: list[str] = []
        args: list[object] = []
        if query.name is not None:
            # The glob matches a file name: the last part of either path (a * in it never spans
            # a folder). Given as bytes: a name that is not UTF-8 is matched as it is on disk.
            name = _FILE_NAME.format
            where.append(f"({name('source')} GLOB CAST(? AS TEXT) OR {name('target')} GLOB CAST(? AS TEXT))")
            args.extend([os.fsencode(query.name)] * 2)
        if query.since is not None:
            where.append("started >= ?")
            args.append(query.since)
        if query.batch is not None:
            where.append("batch = ?")
            args.append(query.batch)
        if query.kinds:
            where.append(f"kind IN ({', '.join('?' * len(query.kinds))})")
            args.extend(k.value for k in query.kinds)
        if query.paths:
            marks = ", ".join("?" * len(query.paths))
            where.append(f"(source IN ({marks}) OR target IN ({marks}))")
            args.extend(query.paths * 2)
        if query.done_only:
            where.append("step = 'done'")
        sql = f"SELECT {_COLUMNS} FROM transfers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            cursor = self._db.execute(sql, (*args, query.limit))
            return [row for row in map(_row, cursor) if row is not None]

    def get(self, row_id: int) -> Transfer | None:
        with self._lock:
            found = self._db.execute(f"SELECT {_COLUMNS} FROM transfers WHERE id = ?", (row_id,)).fetchone()
        return _row(found) if found is not None else None

    # ---- the retry queue ------------------------------------------------------------------------

    def save_retries(self, changed: list[RetryEntry], removed: list[str]) -> None:
        if not changed and not removed:
            return
        rows = [
            (_blob(e.path), e.attempts, e.next_try, _blob(e.last_error), json.dumps(e.errors), e.first_failed)
            for e in changed
        ]
        with self._lock, self._as_ledger_error(), self._transaction():
            self._db.executemany("DELETE FROM retries WHERE path = ?", [(_blob(p),) for p in removed])
            self._db.executemany("INSERT OR REPLACE INTO retries VALUES (?, ?, ?, ?, ?, ?)", rows)

    def load_retries(self) -> tuple[list[RetryEntry], list[str]]:
        entries: list[RetryEntry] = []
        bad: list[tuple[int, str]] = []
        with self._lock, self._as_ledger_error():
            cursor = self._db.execute(
                "SELECT rowid, path, attempts, next_try, last_error, errors, first_failed FROM retries"
            )
            for rowid, *values in cursor.fetchall():
                entry = _retry(values)
                if isinstance(entry, str):
                    bad.append((rowid, entry))
                else:
                    entries.append(entry)
            if bad:
                now = time.time()
                with self._transaction():
                    for rowid, why in bad:
                        self._db.execute(
                            "INSERT INTO retries_aside SELECT path, attempts, next_try, last_error, errors,"
                            " first_failed, ?, ? FROM retries WHERE rowid = ?",
                            (why, now, rowid),
                        )
                        self._db.execute("DELETE FROM retries WHERE rowid = ?", (rowid,))
        return entries, [f"{why}; set aside in the table retries_aside of {self.path}" for _, why in bad]

    # ---- the quarantine's index --------------------------------------------------------------

    def quarantine_add(self, root: str, records: list[Record]) -> None:
        key = _blob(root)
        rows = [
            (
                key,
                r.id,
                _blob(r.name),
                _blob(r.original),
                None if r.intended is None else _blob(r.intended),
                _blob(r.reason),
                r.attempts,
                json.dumps(r.errors),
                r.quarantined_at,
                r.first_failed_at,
                r.size,
            )
            for r in records
        ]
        with self._lock, self._as_ledger_error(), self._transaction():
            self._db.execute("INSERT OR IGNORE INTO quarantine_totals (root) VALUES (?)", (key,))
            self._db.executemany(_INSERT_QUARANTINE, rows)

    def quarantine_drop(self, root: str, ids: list[str]) -> None:
        if not ids:
            return
        key = _blob(root)
        with self._lock, self._as_ledger_error(), self._transaction():
            self._db.executemany("DELETE FROM quarantine WHERE root = ? AND id = ?", [(key, i) for i in ids])

    def quarantine_list(
        self, root: str, *, limit: int | None = None, offset: int = 0, errors: bool = True
    ) -> list[Record]:
        columns = _Q_COLUMNS if errors else _Q_COLUMNS.replace("errors", "'[]'")
        with self._lock, self._as_ledger_error():
            cursor = self._db.execute(
                f"SELECT {columns} FROM quarantine WHERE root = ?"
                " ORDER BY quarantined_at, id LIMIT ? OFFSET ?",
                (_blob(root), -1 if limit is None else limit, offset),
            )
            return _records(cursor)

    def quarantine_get(self, root: str, item_id: str) -> Record | None:
        with self._lock, self._as_ledger_error():
            found = self._db.execute(
                f"SELECT {_Q_COLUMNS} FROM quarantine WHERE root = ? AND id = ?", (_blob(root), item_id)
            ).fetchone()
        return _record(found) if found is not None else None

    def quarantine_ids(self, root: str) -> set[str]:
        with self._lock, self._as_ledger_error():
            cursor = self._db.execute("SELECT id FROM quarantine WHERE root = ?", (_blob(root),))
            return {i for (i,) in cursor if isinstance(i, str)}

    def quarantine_stats(self, root: str) -> QuarantineStats:
        # The totals row, and the oldest from the key (root, quarantined_at, id): a few pages
        # read, however many items there are.
        with self._lock, self._as_ledger_error():
            found = self._db.execute(
                "SELECT count, bytes, (SELECT MIN(quarantined_at) FROM quarantine WHERE root = ?1)"
                " FROM quarantine_totals WHERE root = ?1",
                (_blob(root),),
            ).fetchone()
        if found is None or not found[0] or not all(type(v) is int for v in found[:2]):
            return QuarantineStats()
        count, nbytes, oldest = found
        return QuarantineStats(count, nbytes, float(oldest) if isinstance(oldest, float | int) else None)

    def quarantine_seen(self, root: str) -> int | None:
        with self._lock, self._as_ledger_error():
            found = self._db.execute("SELECT seen_ns FROM quarantine_totals WHERE root = ?", (_blob(root),))
            row = found.fetchone()
        return row[0] if row is not None and type(row[0]) is int else None

    def quarantine_saw(self, root: str, mtime_ns: int | None) -> None:
        with self._lock, self._as_ledger_error(), self._transaction():
            self._db.execute(
                "UPDATE quarantine_totals SET seen_ns = ? WHERE root = ?", (mtime_ns, _blob(root))
            )

    def quarantine_indexed(self, root: str) -> bool:
        with self._lock, self._as_ledger_error():
            found = self._db.execute("SELECT 1 FROM quarantine_totals WHERE root = ?", (_blob(root),))
            return found.fetchone() is not None

    def prune(self, before: float, *, limit: int = 10_000) -> int:
        """Forget finished transfers (done or withdrawn) that finished before ``before``, at most
        ``limit`` of them (the caller comes back for more: the lock is never held for long)."""
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "DELETE FROM transfers WHERE id IN (SELECT id FROM transfers"
                " WHERE step IN ('done', 'withdrawn') AND finished < ? ORDER BY id LIMIT ?)",
                (before, limit),
            )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


_Q_COLUMNS = "id, name, original, intended, reason, attempts, errors, quarantined_at, first_failed_at, size"
_INSERT_QUARANTINE = (
    f"INSERT INTO quarantine (root, {_Q_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (root, id) DO UPDATE SET name = excluded.name, original = excluded.original,"
    " intended = excluded.intended, reason = excluded.reason, attempts = excluded.attempts,"
    " errors = excluded.errors, quarantined_at = excluded.quarantined_at,"
    " first_failed_at = excluded.first_failed_at, size = excluded.size"
)


# A path's last part: rtrim takes off every trailing character but "/", leaving the folder.
_FILE_NAME = (
    "substr(CAST({0} AS TEXT), length(rtrim(CAST({0} AS TEXT), replace(CAST({0} AS TEXT), '/', ''))) + 1)"
)


def _too_new(path: Path, version: int) -> LedgerError:
    return LedgerError(
        f"the ledger {path} was written by a newer reorg-tui (schema {version}; "
        f"this one knows up to {SCHEMA_VERSION}): upgrade, or move it aside"
    )


def _statements(script: str) -> list[str]:
    """The statements of a migration, one by one (run inside its transaction, which
    ``executescript`` would commit). A ``;`` in a comment or a trigger's body does not end one."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip())
    return statements


def _params(row: Transfer, owner: str) -> tuple[object, ...]:
    i = row.identity
    return (
        row.kind.value,
        row.step.value,
        i.dev,
        i.ino,
        i.size,
        i.mtime_ns,
        i.ctime_ns,
        row.source,
        row.target,
        row.started,
        row.finished,
        row.staging,
        row.copy_ino,
        row.batch,
        row.attempts,
        json.dumps(row.errors),
        row.undoes,
        row.owner or owner,
        row.lease,
    )


def _errors(text: object) -> list[str]:
    if text == "[]":  # most rows, and every row of a listing that leaves them out: no decoding
        return []
    try:
        value = parse_json(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [e for e in value if isinstance(e, str)] if isinstance(value, list) else []


def _row(values: tuple[object, ...]) -> Transfer | None:
    """A row as read back; None for one whose fields are not what this version writes (a ledger
    edited by hand): it is left alone, not acted on."""
    (row_id, kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target, started, finished,
     staging, copy_ino, batch, attempts, errors, undoes, owner, lease) = values  # fmt: skip
    try:
        ints = (row_id, dev, ino, size, mtime_ns, ctime_ns, attempts)
        if not all(type(v) is int for v in ints):
            return None
        if not (isinstance(source, bytes) and isinstance(target, bytes)):
            return None
        if not isinstance(started, float | int) or not isinstance(owner, str) or not isinstance(batch, str):
            return None
        if staging is not None and not isinstance(staging, bytes):
            return None
        return Transfer(
            kind=TransferKind(kind),  # type: ignore[arg-type]
            step=Step(step),  # type: ignore[arg-type]
            identity=Identity(dev, ino, size, mtime_ns, ctime_ns),  # type: ignore[arg-type]
            source=source,
            target=target,
            started=float(started),
            finished=float(finished) if isinstance(finished, float | int) else None,
            staging=staging,
            copy_ino=copy_ino if type(copy_ino) is int else None,
            batch=batch,
            attempts=attempts,  # type: ignore[arg-type]
            errors=_errors(errors),
            undoes=undoes if type(undoes) is int else None,
            owner=owner,
            lease=float(lease) if isinstance(lease, float | int) else None,
            id=row_id,  # type: ignore[arg-type]
        )
    except ValueError:
        return None


def _blob(text: str) -> bytes:
    """A path or a text that may hold one, as bytes: a name that is not UTF-8 keeps its bytes
    (``os.fsencode``); a text no filesystem could have made keeps a readable escape."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _text(value: object) -> str | None:
    """A text column as read back: bytes as written by ``_blob``; a str written by hand is fine."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else None


def _retry(values: list[object]) -> RetryEntry | str:
    """A row of the queue as read back, or why it is not one this version wrote."""
    path, attempts, next_try, last_error, errors, first_failed = values
    text_path, error = _text(path), _text(last_error)
    problems = [
        name
        for name, ok in (
            ("path", text_path is not None),
            ("attempts", a_count(attempts)),
            ("next_try", next_try is None or a_time(next_try)),
            ("last_error", error is not None),
            ("first_failed", a_time(first_failed)),
        )
        if not ok
    ]
    if problems or text_path is None or error is None:
        shown = ", ".join(f"{name}={values[_RETRY_FIELDS.index(name)]!r}" for name in problems)
        return f"a retry row with {shown} is not what this version writes"
    return RetryEntry(
        path=text_path,
        attempts=attempts,  # type: ignore[arg-type]
        next_try=None if next_try is None else float(next_try),  # type: ignore[arg-type]
        last_error=error,
        errors=_errors(errors),
        first_failed=float(first_failed),  # type: ignore[arg-type]
    )


_RETRY_FIELDS = ("path", "attempts", "next_try", "last_error", "errors", "first_failed")


def _record(values: tuple[object, ...]) -> Record | None:
    """An index row as read back; None for one edited by hand into something else (not listed,
    never acted on: ``repair`` puts it right from the item's record at the next start). Checked
    by the rule a record file is (records.checked_record)."""
    found = _records([values])
    return found[0] if found else None


def _records(rows: Iterable[tuple[object, ...]]) -> list[Record]:
    """``_record`` of each row, those that are records: written out flat, a listing of 50,000
    rows runs it for each (the text columns decoded here, not a call each)."""
    out: list[Record] = []
    for item_id, name, original, intended, reason, attempts, errors, at, first, size in rows:
        if type(name) is bytes:
            name = name.decode("utf-8", "surrogateescape")
        if type(original) is bytes:
            original = original.decode("utf-8", "surrogateescape")
        if type(intended) is bytes:
            intended = intended.decode("utf-8", "surrogateescape")
        if type(reason) is bytes:
            reason = reason.decode("utf-8", "surrogateescape")
        record = checked_record(
            item_id, name, original, intended, reason, attempts, _errors(errors), at, first, size
        )
        if record is not None:
            out.append(record)
    return out
