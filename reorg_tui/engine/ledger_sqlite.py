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
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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
    CREATE INDEX transfers_open ON transfers (step) WHERE step IN ('intent', 'staged', 'published');
    -- No index on times or paths: each costs a rename more than history saves, and history and
    -- undo read the rows in id order (the order they were written), which is time order.
    CREATE TABLE retries (
        path BLOB PRIMARY KEY,
        attempts INTEGER NOT NULL,
        next_try REAL,
        last_error TEXT NOT NULL,
        errors TEXT NOT NULL DEFAULT '[]',
        first_failed REAL NOT NULL
    );
    CREATE TABLE quarantine (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        original TEXT NOT NULL,
        intended TEXT,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        errors TEXT NOT NULL DEFAULT '[]',
        quarantined_at REAL NOT NULL,
        first_failed_at REAL NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE INDEX quarantine_age ON quarantine (quarantined_at);
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
_INSERT_RENAME = (
    "INSERT INTO transfers (kind, step, dev, ino, size, mtime_ns, ctime_ns, source, target,"
    " started, finished, batch, owner) VALUES (?1, 'done', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)"
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

    # ---- transfers -----------------------------------------------------------------------------

    def record(self, rows: list[Transfer]) -> None:
        if not rows:
            return
        params = [_params(row, self.owner) for row in rows]
        with self._lock, self._transaction():
            self._db.executemany(_INSERT, params)

    def record_renames(self, kind: TransferKind, batch: str, rows: list[RenameRow]) -> None:
        if not rows:
            return
        k, owner = kind.value, self.owner
        params = [(k, *row, batch, owner) for row in rows]
        with self._lock, self._transaction():
            self._db.executemany(_INSERT_RENAME, params)

    def begin(self, row: Transfer) -> int:
        with self._lock, self._transaction(durable=True):
            cursor = self._db.execute(_INSERT, _params(row, self.owner))
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
        return True

    def open_rows(self) -> list[Transfer]:
        with self._lock:
            cursor = self._db.execute(
                f"SELECT {_COLUMNS} FROM transfers WHERE step IN ('intent', 'staged', 'published')"
                " ORDER BY id"
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
    return [s.strip() for s in script.split(";") if s.strip()]


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
    try:
        value = json.loads(text) if isinstance(text, str) else []
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
