"""Store backends for the contract tests: SQLite in tmp_path, and a throwaway PostgreSQL cluster.

The cluster is started once per session from the Debian binaries (initdb, pg_ctl) in a temp dir, listening on
127.0.0.1 and a unix socket in that dir; every test gets its own fresh database.  Tests run as root in CI, and
PostgreSQL refuses to run as root, so the server runs as the `postgres` OS user then.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.store.backends import Backend

from perceus.master.store import NodeStore

PG_BIN = Path(os.environ.get("PERCEUS_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class PgCluster:
    """A running throwaway PostgreSQL server."""

    root: Path
    port: int
    user: str
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name}")
        return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not (initdb.exists() and pg_ctl.exists()):
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed (pip install 'perceus[postgres]')")
    # Not under pytest's tmp_path: that is mode 0700 root's, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="perceus-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    run: Callable[..., Any] = subprocess.run
    run(
        _as_postgres([str(initdb), "-D", str(data), "-A", "trust", "-U", user, "--no-sync", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    # fsync off: a throwaway cluster; durability is PostgreSQL's job, not what these tests check.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    run(
        _as_postgres([str(pg_ctl), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield PgCluster(root=root, port=port, user=user)
    finally:
        run(_as_postgres([str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "perceus.db"))
        return
    yield from _pg_backend(request.getfixturevalue("pg_cluster"))


def _pg_backend(cluster: PgCluster) -> Iterator[Backend]:
    name = cluster.create_database()
    yield Backend("postgresql", cluster.url(name))
    cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg(pg_cluster: PgCluster) -> Iterator[Backend]:
    """A fresh PostgreSQL database, for the tests of what only that backend does."""
    yield from _pg_backend(pg_cluster)


@pytest.fixture
def store(backend: Backend) -> Iterator[NodeStore]:
    with backend.open() as opened:
        yield opened
