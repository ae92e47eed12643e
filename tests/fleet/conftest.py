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

import contextlib
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
        # A server a test stopped and started again (pg.start) is not the one pgserver started,
        # and its cleanup leaves it running: stopped here, before its folder goes.
        with contextlib.suppress(Exception):
            pg._pg_ctl("-w", "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database(postgres: Postgres) -> str:
    """A URL of a database of its own for this test."""
    return postgres.new_database()


class Daemons:
    """Real headless daemons of one fleet: one source, one destination, one coordinator, a state
    folder and a log file each. Killed (SIGKILL ends a SIGSTOPped one too) after the test."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.source, self.dest, self.quarantine = root / "source", root / "dest", root / "quarantine"
        for folder in (self.source, self.dest, self.quarantine):
            folder.mkdir(exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        import sys

        state = self.root / f"state-{name}"
        args = [
            *("--headless", "-s", str(self.source), "-d", str(self.dest)),
            *("--quarantine", str(self.quarantine), "--state-dir", str(state)),
            *("--coordinator", self.url, "--recursive", "--settle", "0.2", "--poll-interval", "1"),
            *("--claim-lease", "3", "--workers", "2", "--batch-size", "64", "--stats-interval", "1"),
            *extra,
        ]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("REORG_")}
        full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        with open(self.log_path(name), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reorg_tui", *args], stdout=log, stderr=log, env=full_env
            )
        self.procs[name] = proc
        return proc

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    def state_dir(self, name: str) -> Path:
        return self.root / f"state-{name}"

    def snapshot(self, name: str) -> dict[str, object] | None:
        from reorg_tui.engine.publish import read_state

        state = read_state(self.state_dir(name))
        return None if state is None else state["snapshot"]  # type: ignore[no-any-return]

    def stop_all(self) -> dict[str, int]:
        """SIGTERM each still running, and its exit code."""
        import signal

        codes = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            codes[name] = proc.wait(timeout=30)
        return codes

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def daemons(tmp_path: Path, database: str) -> Iterator[Daemons]:
    fleet = Daemons(tmp_path, database)
    try:
        yield fleet
    finally:
        fleet.kill_all()
