"""The ledger's PostgreSQL backend: the fleet's shared work queue, its outcomes and its instances.

Several daemons on one shared source (``--coordinator postgresql://...``) meet here. Tables, all
made idempotently on connect under one advisory transaction lock (several instances starting at
once), their version in ``reorg_schema``:
- ``reorg_sources``: one row a source (its identity: the source's real path, the same on every
  host that mounts the share at the same place), with the settings that must agree across the
  fleet (layout, pattern, conflict policy), stored by the first instance.
- ``reorg_files``: one row a file the lister found ready, keyed by its identity (path, inode,
  size, mtime, ctime: as in the ledger; ``st_dev`` is left out, being one host's number for a
  share). Its ``state`` goes ready -> claimed -> done | quarantined | skipped | vanished |
  changed | left. A claim sets ``owner``, ``lease`` and a new ``fence`` (a sequence); an
  outcome is written only ``WHERE fence = mine``: an instance that stalled past its lease
  changes nothing when it wakes.
- ``reorg_instances``: each instance's latest snapshot (``status --coordinator``).

psycopg (version 3) is imported here only, and this module only by the fleet (fleet.py): the
single-host daemon never loads it. Every method is thread-safe (one connection for the work,
behind a lock; the lister's advisory lock is held by a session of its own, so that it is lost
the moment that session dies, and with it the process). A connection that fails raises
``CoordinatorDown``; the next use (at most once a second) connects again.

Over 300 lines because every statement the fleet runs is here, each beside what it guarantees
(the fences, SKIP LOCKED, the lease), so that the SQL is read in one place and nowhere else.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.ledger import Identity, Query, Step, Transfer, TransferKind

SCHEMA_VERSION = 1
SCHEMA_LOCK = 0x7265_6F72_6700  # the advisory lock the schema is made under ("reorg" in hex)
RECONNECT_EVERY = 1.0  # seconds: a coordinator that is down is tried again this often at most
CONNECT_TIMEOUT = 5  # seconds: an unreachable host is declared down after this long


class CoordinatorError(ReorgError):
    """The coordinator cannot be used as given (a bad URL, no psycopg, a newer schema, another
    fleet's settings): one line, exit 2."""

    exit_code = ExitCode.USAGE


class CoordinatorDown(Exception):
    """The coordinator cannot be reached now. Engine-internal: intake pauses until it answers."""


class FileState(StrEnum):
    READY = "ready"  # listed, settled: any instance may claim it
    CLAIMED = "claimed"  # an instance moves it; its lease says until when
    DONE = "done"  # at its destination
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"  # left in the source by the conflict policy (until it changes)
    VANISHED = "vanished"  # gone from the source, and not at its destination: someone else took it
    CHANGED = "changed"  # not the file listed any more: listed again as a new row
    LEFT = "left"  # may not be moved (setuid of another user...): left in the source


FINAL = frozenset(FileState) - {FileState.READY, FileState.CLAIMED}


def where(url: str) -> str:
    """What may be shown of a coordinator URL: host and database, never the user or password.
    A Unix socket folder given as ``?host=`` is the host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        for item in parts.query.split("&"):
            key, _, value = item.partition("=")
            if key == "host":
                host = value
    port = f":{parts.port}" if parts.port else ""
    database = parts.path.lstrip("/") or "postgres"
    return f"{host or 'localhost'}{port}/{database}"


def check_url(url: str) -> None:
    """A coordinator URL this backend takes, else CoordinatorError (its text never holds the URL)."""
    scheme = urlsplit(url).scheme
    if scheme not in ("postgresql", "postgres"):
        raise CoordinatorError(
            f"--coordinator must be a postgresql:// URL (got a {scheme or 'schemeless'} one)"
        )


def lister_key(identity: str) -> int:
    """The advisory lock of a source's lister: a stable 64-bit hash of its identity (the same on
    every host and version), signed as PostgreSQL's bigint is."""
    digest = hashlib.sha256(b"reorg-tui lister\0" + identity.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def folder_key(rel: str) -> int:
    """A file's folder as a number: claims start at an instance's own point in this order, so
    instances spread over folders instead of all contending for one folder's lock."""
    return zlib.crc32(os.fsencode(rel.rpartition("/")[0])) & 0x7FFF_FFFF


def signed_ino(ino: int) -> int:
    return ino - (1 << 64) if ino >= 1 << 63 else ino  # an inode is unsigned 64-bit; bigint is not


@dataclass(frozen=True)
class Claim:
    """A file this instance claimed: the row, its fence, the identity the lister saw."""

    id: int
    rel: str
    fence: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    def matches(self, st: os.stat_result) -> bool:
        return (
            signed_ino(st.st_ino) == self.ino
            and st.st_size == self.size
            and st.st_mtime_ns == self.mtime_ns
            and st.st_ctime_ns == self.ctime_ns
        )


@dataclass(frozen=True)
class Finished:
    """An outcome to record, where the fence still matches."""

    id: int
    fence: int
    state: FileState
    target: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class InstanceRow:
    owner: str
    host: str
    pid: int
    snapshot: dict[str, Any]
    seen_ago: float  # seconds since it last wrote (the database's clock: no host's)


def _schema_version(conn: Any) -> int | None:
    """The schema's version in this database; None where it is not made (or not whole)."""
    row = conn.execute("SELECT to_regclass('reorg_schema') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return None
    found = conn.execute("SELECT max(version) FROM reorg_schema").fetchone()
    return None if found is None or found[0] is None else int(found[0])


def _has_schema(conn: Any) -> bool:
    row = conn.execute("SELECT to_regclass('reorg_files') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _transfer(row: tuple[Any, ...]) -> Transfer:
    rid, identity, rel, state, target, ino, size, mtime_ns, ctime_ns, listed, finished, by, error = row
    source = os.fsencode(identity) + b"/" + bytes(rel)
    done = state == FileState.DONE
    return Transfer(
        kind=TransferKind.DELIVER if done else TransferKind.QUARANTINE,
        step=Step.DONE,
        identity=Identity(0, ino % (1 << 64), size, mtime_ns, ctime_ns),  # (no st_dev: each client's own)
        source=source,
        target=bytes(target) if target is not None else b"(the quarantine)",
        started=float(listed),
        finished=float(finished),
        errors=[error] if error and not done else [],
        owner=by or "",
        id=rid,
    )


def _named(row: Transfer, glob: str) -> bool:
    names = (os.path.basename(row.source_path), os.path.basename(row.target_path))
    if any(c in glob for c in "*?["):
        return any(fnmatch.fnmatchcase(name, glob) for name in names)
    return glob in names


_SCHEMA = """
CREATE TABLE IF NOT EXISTS reorg_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS reorg_sources (
    id bigserial PRIMARY KEY,
    identity text NOT NULL UNIQUE,
    settings jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    lister_owner text,  -- the instance that lists it, and when it last said it lives
    lister_seen timestamptz
);
CREATE SEQUENCE IF NOT EXISTS reorg_fence;
CREATE TABLE IF NOT EXISTS reorg_files (
    id bigserial PRIMARY KEY,
    source_id bigint NOT NULL REFERENCES reorg_sources (id),
    rel bytea NOT NULL,
    folder_key integer NOT NULL,
    ino bigint NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    ctime_ns bigint NOT NULL,
    state text NOT NULL DEFAULT 'ready',
    owner text,
    lease timestamptz,
    fence bigint NOT NULL DEFAULT 0,
    listed timestamptz NOT NULL DEFAULT now(),
    finished timestamptz,
    finished_by text,
    target bytea,
    error text,
    UNIQUE (source_id, rel, ino, size, mtime_ns, ctime_ns)
);
CREATE INDEX IF NOT EXISTS reorg_files_ready ON reorg_files (source_id, folder_key, id)
    WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS reorg_files_claimed ON reorg_files (source_id, lease)
    WHERE state = 'claimed';
CREATE INDEX IF NOT EXISTS reorg_files_finished ON reorg_files (source_id, finished)
    WHERE finished IS NOT NULL;
CREATE TABLE IF NOT EXISTS reorg_instances (
    owner text PRIMARY KEY,
    source_id bigint NOT NULL REFERENCES reorg_sources (id),
    host text NOT NULL,
    pid integer NOT NULL,
    snapshot jsonb NOT NULL,
    seen timestamptz NOT NULL DEFAULT now()
);
"""


class PgLedger:
    """The fleet's side of the ledger for one source, as instance ``owner``."""

    def __init__(self, url: str, *, owner: str, identity: str) -> None:
        check_url(url)
        try:
            import psycopg
        except ImportError:
            raise CoordinatorError(
                "--coordinator needs psycopg: install reorg-tui[fleet] (pip install 'reorg-tui[fleet]')"
            ) from None
        self._psycopg = psycopg
        self._url = url  # a secret: never logged, never in an error's text (where() is)
        self.where = where(url)
        self.owner = owner
        self.identity = identity
        self.key = lister_key(identity)
        self.source_id = 0
        self._lock = threading.Lock()  # the work connection: one statement at a time
        self._conn: Any = None
        self._tried = 0.0  # monotonic: the last connection attempt
        self._lister: Any = None  # the session that holds the lister's advisory lock
        self.ended_lister: tuple[str, float] | None = None  # a stalled lister whose session was ended

    # ---- connections ---------------------------------------------------------------------------

    def _connect(self, role: str = "") -> Any:
        """A session, named for ``pg_stat_activity`` by what it does and this process's pid."""
        name = f"reorg-tui {role} {os.getpid()}" if role else f"reorg-tui {os.getpid()}"
        try:
            # Over TCP, a peer that vanishes (a pulled cable, a paused VM) is noticed within
            # seconds, not the kernel's 15 minutes (libpq ignores these for a Unix socket).
            return self._psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=name,
                # A commit lost to a crash of the database costs nothing here: a claim lapses, an
                # outcome not recorded is found again by the next claimer (both names are looked
                # at), a file not published is listed again. So no statement waits for its WAL.
                options="-c synchronous_commit=off",
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=15_000,
            )
        except self._psycopg.Error as exc:
            raise CoordinatorDown(self._why(exc)) from None

    def _why(self, exc: BaseException) -> str:
        """A database error in one line, without the URL (psycopg's text names host and db only)."""
        text = str(exc).strip().splitlines()
        line = text[0] if text else type(exc).__name__
        return line.replace(self._url, self.where)

    @contextlib.contextmanager
    def _work(self) -> Iterator[Any]:
        """The work connection, connected again where it was lost; CoordinatorDown if it cannot
        be (or fails during the block: the connection is then dropped, to be made afresh)."""
        psycopg = self._psycopg
        with self._lock:
            if self._conn is None or self._conn.closed:
                now = time.monotonic()
                if now - self._tried < RECONNECT_EVERY:
                    raise CoordinatorDown(f"{self.where} is not reachable (trying again)")
                self._tried = now
                self._conn = self._connect()
            try:
                yield self._conn
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
                raise CoordinatorDown(self._why(exc)) from None

    def open(self, agreed: dict[str, str]) -> None:
        """Connect, make the schema (or check its version), and find or make this source's row
        with the settings that must agree: CoordinatorError naming the first that differs.
        CoordinatorDown if the coordinator cannot be reached."""
        self._tried = 0.0
        with self._work() as conn:
            # Made only where it is missing: DDL on a live fleet's tables (even IF NOT EXISTS)
            # takes their strongest locks, and would stall every claim, or deadlock with them.
            version = _schema_version(conn)
            if version is None:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    version = _schema_version(conn)  # (another instance made it meanwhile?)
                    if version is None:
                        conn.execute(_SCHEMA)
                        conn.execute("INSERT INTO reorg_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
                        version = SCHEMA_VERSION
            if version > SCHEMA_VERSION:
                raise CoordinatorError(
                    f"the coordinator {self.where} holds schema version {version}, newer than this "
                    f"reorg-tui's {SCHEMA_VERSION}: upgrade this instance"
                )
        with self._work() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO reorg_sources (identity, settings) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (self.identity, json.dumps(agreed)),
            )
            found = conn.execute(
                "SELECT id, settings FROM reorg_sources WHERE identity = %s", (self.identity,)
            ).fetchone()
        self.source_id, stored = found
        for name, value in agreed.items():
            if stored.get(name) != value:
                flag = "--" + name.replace("_", "-")
                raise CoordinatorError(
                    f"the fleet on {self.identity} runs with {flag} {stored.get(name)!r} (stored in "
                    f"{self.where} by its first instance); this instance was given {value!r}: start "
                    "it with the same"
                )

    def close(self) -> None:
        self.drop_lister()
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    # ---- the lister ----------------------------------------------------------------------------

    def lister(self, stale_after: float) -> bool:
        """Whether this instance is the lister: holds the lock (its session answering) or takes
        it now. Called by one thread (the scanner), once a poll interval.

        A lister that died lost the lock with its session. One that stalled (SIGSTOP, a VM
        paused) keeps its session, and so the lock, while nobody lists: so the lister says it
        lives once a second (``lister_alive``), and a lister not heard of for ``stale_after``
        seconds has its session ended here (``pg_terminate_backend``: the fleet's instances
        connect as one role), and the lock is taken. Should it wake, it finds its session gone,
        and lists no more."""
        psycopg = self._psycopg
        if self._lister is not None:
            try:
                self._lister.execute("SELECT 1")
                return True
            except psycopg.Error:
                self.drop_lister()  # the session died: the lock went with it
        try:
            session = self._connect("lister")
        except CoordinatorDown:
            return False
        try:
            held = self._try_lock(session)
            if not held and self._end_stalled_lister(session, stale_after):
                held = self._try_lock(session)
            if held:
                session.execute(
                    "UPDATE reorg_sources SET lister_owner = %s, lister_seen = now() WHERE id = %s",
                    (self.owner, self.source_id),
                )
                self._lister = session
                return True
        except psycopg.Error:
            pass
        session.close()
        return False

    def _try_lock(self, session: Any) -> bool:
        row = session.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def _lock_oids(self) -> tuple[int, int]:
        """The lister's lock as pg_locks shows a bigint key: its high and low 32 bits."""
        key = self.key & 0xFFFF_FFFF_FFFF_FFFF
        return key >> 32, key & 0xFFFF_FFFF

    def _end_stalled_lister(self, session: Any, stale_after: float) -> bool:
        """End the session of a lister not heard of for ``stale_after`` seconds; whether one was."""
        row = session.execute(
            "SELECT lister_owner, extract(epoch FROM now() - lister_seen) FROM reorg_sources WHERE id = %s",
            (self.source_id,),
        ).fetchone()
        if row is None or row[1] is None or float(row[1]) < stale_after:
            return False
        ended = session.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 1",
            (*self._lock_oids(),),
        ).fetchall()
        if not any(r[0] for r in ended):
            return False
        self.ended_lister = (str(row[0]), float(row[1]))
        time.sleep(0.1)  # (the backend ends at once; its lock goes as it does)
        return True

    def lister_alive(self) -> None:
        """The lister's heartbeat, once a second (on the work connection: a long listing does
        not hold it up)."""
        with self._work() as conn:
            conn.execute(
                "UPDATE reorg_sources SET lister_seen = now() WHERE id = %s AND lister_owner = %s",
                (self.source_id, self.owner),
            )

    def drop_lister(self) -> None:
        session, self._lister = self._lister, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()  # the session ends: its advisory lock with it

    # ---- the queue -----------------------------------------------------------------------------

    def publish(self, files: list[tuple[str, os.stat_result]]) -> int:
        """The lister: files found ready, as rows (one that is there already is left as it is).
        Returns how many were new."""
        if not files:
            return 0
        rels = [os.fsencode(rel) for rel, _ in files]
        keys = [folder_key(rel) for rel, _ in files]
        inos = [signed_ino(st.st_ino) for _, st in files]
        sizes = [st.st_size for _, st in files]
        mtimes = [st.st_mtime_ns for _, st in files]
        ctimes = [st.st_ctime_ns for _, st in files]
        with self._work() as conn:
            # Not a file an undo put back (an 'undone' row), while it is the same file: the same
            # inode, size and mtime, not the ctime (a chmod moves it), as undone.holds on one host.
            cur = conn.execute(
                "INSERT INTO reorg_files (source_id, rel, folder_key, ino, size, mtime_ns, ctime_ns) "
                "SELECT %s, u.* FROM unnest(%s::bytea[], %s::int[], %s::bigint[], %s::bigint[], "
                "%s::bigint[], %s::bigint[]) AS u(rel, folder_key, ino, size, mtime_ns, ctime_ns) "
                "WHERE NOT EXISTS (SELECT 1 FROM reorg_files h WHERE h.source_id = %s AND h.rel = u.rel "
                "AND h.ino = u.ino AND h.size = u.size AND h.mtime_ns = u.mtime_ns AND h.state = 'undone') "
                "ON CONFLICT DO NOTHING",
                (self.source_id, rels, keys, inos, sizes, mtimes, ctimes, self.source_id),
            )
            return int(cur.rowcount)

    def hold(self, files: list[tuple[str, os.stat_result]]) -> int:
        """Files an undo put back in the source, as rows in state 'undone' under the identity
        each has there now: the lister's publish of the same file (the same inode, size and
        mtime at that name) then does nothing, so no instance delivers it again until it changes.
        The fleet's ``undone.py``. CoordinatorError where no fleet runs on this source."""
        if not files:
            return 0
        try:
            return self._hold(files)
        except self._psycopg.errors.UndefinedTable:
            raise CoordinatorError(f"no fleet has used the coordinator {self.where} yet") from None

    def _hold(self, files: list[tuple[str, os.stat_result]]) -> int:
        with self._work() as conn, conn.transaction():
            found = conn.execute(
                "SELECT id FROM reorg_sources WHERE identity = %s", (self.identity,)
            ).fetchone()
            if found is None:
                raise CoordinatorError(f"no fleet on {self.identity} has used the coordinator {self.where}")
            cur = conn.execute(
                "INSERT INTO reorg_files (source_id, rel, folder_key, ino, size, mtime_ns, ctime_ns, "
                "state, finished, finished_by) SELECT %s, *, 'undone', now(), %s FROM unnest(%s::bytea[], "
                "%s::int[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                (
                    found[0],
                    self.owner,
                    [os.fsencode(rel) for rel, _ in files],
                    [folder_key(rel) for rel, _ in files],
                    [signed_ino(st.st_ino) for _, st in files],
                    [st.st_size for _, st in files],
                    [st.st_mtime_ns for _, st in files],
                    [st.st_ctime_ns for _, st in files],
                ),
            )
            return int(cur.rowcount)

    def claim(self, count: int, start: int, lease: float) -> list[Claim]:
        """Up to ``count`` ready files, claimed for this instance until ``lease`` seconds from now,
        each with a new fence: from the folder order's point ``start`` on, then from its
        beginning. Rows another instance is claiming at this moment are skipped, not waited for."""
        claims = self._claim(count, start, lease)
        if len(claims) < count and start > 0:
            claims += self._claim(count - len(claims), 0, lease)
        return claims

    def _claim(self, count: int, start: int, lease: float) -> list[Claim]:
        with self._work() as conn:
            rows = conn.execute(
                "WITH picked AS (SELECT id FROM reorg_files WHERE source_id = %s AND state = 'ready' "
                "AND folder_key >= %s ORDER BY folder_key, id LIMIT %s FOR UPDATE SKIP LOCKED) "
                "UPDATE reorg_files f SET state = 'claimed', owner = %s, "
                "lease = now() + make_interval(secs => %s), fence = nextval('reorg_fence') "
                "FROM picked WHERE f.id = picked.id "
                "RETURNING f.id, f.rel, f.fence, f.ino, f.size, f.mtime_ns, f.ctime_ns",
                (self.source_id, start, count, self.owner, lease),
            ).fetchall()
        return [Claim(r[0], os.fsdecode(bytes(r[1])), *r[2:]) for r in rows]

    def confirm(self, claims: list[Claim], lease: float) -> set[int]:
        """Of ``claims``, the ids still this instance's (the fence unchanged), their leases
        renewed: only those may move. The others were taken over while this one stalled."""
        if not claims:
            return set()
        with self._work() as conn:
            rows = conn.execute(
                "UPDATE reorg_files f SET lease = now() + make_interval(secs => %s) "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS c(id, fence) "
                "WHERE f.id = c.id AND f.fence = c.fence AND f.state = 'claimed' RETURNING f.id",
                (lease, [c.id for c in claims], [c.fence for c in claims]),
            ).fetchall()
        return {r[0] for r in rows}

    def finish(self, outcomes: list[Finished]) -> int:
        """Record outcomes, each only where its fence still matches; returns how many were (the
        rest belong to a claim that lapsed, and change nothing)."""
        if not outcomes:
            return 0
        final = [o for o in outcomes if o.state in FINAL]
        back = [o for o in outcomes if o.state == FileState.READY]
        recorded = 0
        with self._work() as conn, conn.transaction():
            if final:
                cur = conn.execute(
                    "UPDATE reorg_files f SET state = c.state, finished = now(), finished_by = %s, "
                    "target = c.target, error = c.error, owner = NULL, lease = NULL "
                    "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bytea[], %s::text[]) "
                    "AS c(id, fence, state, target, error) "
                    "WHERE f.id = c.id AND f.fence = c.fence AND f.state = 'claimed'",
                    (
                        self.owner,
                        [o.id for o in final],
                        [o.fence for o in final],
                        [str(o.state) for o in final],
                        [None if o.target is None else os.fsencode(o.target) for o in final],
                        [o.error for o in final],
                    ),
                )
                recorded += cur.rowcount
            if back:
                cur = conn.execute(
                    "UPDATE reorg_files f SET state = 'ready', owner = NULL, lease = NULL "
                    "FROM unnest(%s::bigint[], %s::bigint[]) AS c(id, fence) "
                    "WHERE f.id = c.id AND f.fence = c.fence AND f.state = 'claimed'",
                    ([o.id for o in back], [o.fence for o in back]),
                )
                recorded += cur.rowcount
        return int(recorded)

    def renew(self, ids: list[int], lease: float) -> int:
        """The heartbeat: this instance's claims (those it still holds) last ``lease`` more seconds."""
        if not ids:
            return 0
        with self._work() as conn:
            cur = conn.execute(
                "UPDATE reorg_files SET lease = now() + make_interval(secs => %s) "
                "WHERE id = ANY(%s) AND owner = %s AND state = 'claimed'",
                (lease, ids, self.owner),
            )
            return int(cur.rowcount)

    def expire(self) -> int:
        """Claims whose lease ran out (their instance died or stalled): ready again, for anyone."""
        with self._work() as conn:
            cur = conn.execute(
                "UPDATE reorg_files SET state = 'ready', owner = NULL, lease = NULL "
                "WHERE source_id = %s AND state = 'claimed' AND lease < now()",
                (self.source_id,),
            )
            return int(cur.rowcount)

    def counts(self) -> dict[str, int]:
        """This source's rows by state, found by its identity (read only: no ``open`` needed;
        empty where no fleet ever wrote there)."""
        with self._work() as conn:
            if not _has_schema(conn):
                return {}
            rows = conn.execute(
                "SELECT f.state, count(*) FROM reorg_files f JOIN reorg_sources s ON s.id = f.source_id "
                "WHERE s.identity = %s GROUP BY f.state",
                (self.identity,),
            ).fetchall()
        return {state: n for state, n in rows}

    def forget_sources(self, below: str) -> None:
        """Every row of the sources whose identity is below the folder ``below`` (a benchmark's
        own, in a coordinator it was lent)."""
        like = below.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        with self._work() as conn, conn.transaction():
            if not _has_schema(conn):
                return
            ids = "(SELECT id FROM reorg_sources WHERE identity LIKE %s)"
            conn.execute(f"DELETE FROM reorg_files WHERE source_id IN {ids}", (like,))
            conn.execute(f"DELETE FROM reorg_instances WHERE source_id IN {ids}", (like,))
            conn.execute("DELETE FROM reorg_sources WHERE identity LIKE %s", (like,))

    # ---- history -------------------------------------------------------------------------------

    def query(self, query: Query) -> list[Transfer]:
        """The fleet's finished transfers (delivered or quarantined, by any instance), newest
        first, as the ledger's rows: what ``history --coordinator`` prints. The name glob is
        matched here, on the file name's bytes decoded as the filesystem does; the rows are read
        through a server-side cursor, so a large fleet's table is never read whole."""
        psycopg = self._psycopg
        since = query.since if query.since is not None else 0.0
        out: list[Transfer] = []
        try:
            with self._work() as conn, conn.transaction(), conn.cursor(name="reorg_history") as cur:
                cur.itersize = 2000
                cur.execute(
                    "SELECT f.id, s.identity, f.rel, f.state, f.target, f.ino, f.size, f.mtime_ns, "
                    "f.ctime_ns, extract(epoch FROM f.listed), extract(epoch FROM f.finished), "
                    "f.finished_by, f.error FROM reorg_files f JOIN reorg_sources s ON s.id = f.source_id "
                    "WHERE (%s = '' OR s.identity = %s) AND f.state IN ('done', 'quarantined') "
                    "AND f.finished >= to_timestamp(%s) ORDER BY f.finished DESC, f.id DESC",
                    (self.identity, self.identity, since),
                )
                for row in cur:
                    transfer = _transfer(row)
                    if query.name is None or _named(transfer, query.name):
                        out.append(transfer)
                        if len(out) >= query.limit:
                            break
        except psycopg.errors.UndefinedTable:
            raise CoordinatorError(f"no fleet has used the coordinator {self.where} yet") from None
        return out

    # ---- the instances -------------------------------------------------------------------------

    def seen(self, host: str, pid: int, snapshot: dict[str, Any]) -> None:
        """This instance's snapshot, written once a second: what ``status --coordinator`` reads."""
        with self._work() as conn:
            conn.execute(
                "INSERT INTO reorg_instances (owner, source_id, host, pid, snapshot, seen) "
                "VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (owner) DO UPDATE SET "
                "snapshot = EXCLUDED.snapshot, seen = now()",
                (self.owner, self.source_id, host, pid, json.dumps(snapshot)),
            )

    def instances(self, within: float = 86_400.0) -> dict[str, list[InstanceRow]]:
        """Every instance seen in the last ``within`` seconds, by source (this ledger's only, if
        it names one: ``identity``), in the order they were first seen. Read only: nothing is made
        (CoordinatorError where no fleet ever wrote there)."""
        psycopg = self._psycopg
        try:
            with self._work() as conn:
                rows = conn.execute(
                    "SELECT s.identity, i.owner, i.host, i.pid, i.snapshot, "
                    "extract(epoch FROM now() - i.seen) FROM reorg_instances i "
                    "JOIN reorg_sources s ON s.id = i.source_id "
                    "WHERE (%s = '' OR s.identity = %s) AND i.seen > now() - make_interval(secs => %s) "
                    "ORDER BY s.identity, i.owner",
                    (self.identity, self.identity, within),
                ).fetchall()
        except psycopg.errors.UndefinedTable:
            raise CoordinatorError(f"no fleet has used the coordinator {self.where} yet") from None
        out: dict[str, list[InstanceRow]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(InstanceRow(r[1], r[2], r[3], r[4], float(r[5])))
        return out
