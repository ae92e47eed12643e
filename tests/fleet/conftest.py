"""A real PostgreSQL for the fleet's tests, started by the test run itself.

``pgserver`` (a test dependency) ships a PostgreSQL inside its wheel: one server for the whole
session, in a folder of the run, and a fresh database for each test, so tests never see each
other's rows. As root (CI, this machine) pgserver makes and runs as a system user ``pgserver``,
since PostgreSQL refuses to run as root; it opens the run's folder's parents for that user to
traverse. The server is reached over a Unix socket in its data folder: no port is taken.

Where the server cannot start (no wheel for the platform, no way to add the user), the tests
are skipped with the reason; in CI (``CI`` set) that is a failure instead, so a fleet left
untested never passes quietly.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Postgres:
    """The session's server: where its data is, and how to stop and start it under a fleet."""

    data: Path
    server: object  # pgserver.PostgresServer
    _names = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)  # type: ignore[attr-defined,no-any-return]

    def new_database(self) -> str:
        import psycopg

        name = f"fleet_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands  # (its own pg_ctl, run as its user where we are root)

        user = getattr(self.server, "system_user", None)
        _commands.pg_ctl(list(args), pgdata=self.data, user=user, timeout=30)

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``: as a crash or a pulled cable would)."""
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        """Start it again on the same socket folder, as pgserver first did."""
        info = self.server.get_postmaster_info()  # type: ignore[attr-defined]
        socket_dir = info.socket_dir
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.data / "log"), "start")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    folder = Path(tempfile.mkdtemp(prefix="reorg-pg-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))  # pgserver's lock file (else a warning)
    try:
        import pgserver

        server = pgserver.get_server(folder / "data", cleanup_mode="stop")
    except (ImportError, OSError, subprocess.SubprocessError, AssertionError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        reason = f"no PostgreSQL for the fleet tests: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    pg = Postgres(folder / "data", server)
    try:
        yield pg
    finally:
        server.cleanup()  # type: ignore[attr-defined]
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database(postgres: Postgres) -> str:
    """A URL of a database of its own for this test."""
    return postgres.new_database()
