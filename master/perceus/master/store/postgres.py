"""PostgreSQL node store (psycopg 3 + a connection pool): the shared backend several masters run on.

The rules live in rules.py, shared with SQLiteStore (the contract tests in tests/integration/store/ run over
both).  What differs:
- Name allocation and every write that creates or renames a node hold a transaction-scoped advisory lock, so
  masters enrolling at the same moment queue up instead of racing for the same lowest free name (1.x ref §13:
  Perceus 1.x on a shared MySQL had no locking at all).
- Node writes fire `NOTIFY node_changed` (a trigger, so the CLI, every master and the migration tool all
  notify); `listener()` hands perceus-bus a pollable fd to regenerate dnsmasq hosts within a second.
- A deadlock or serialisation failure between masters is retried a few times before it is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import structlog
from psycopg import errors as pgerrors

from perceus.errors import AlreadyExistsError, PerceusError
from perceus.master.store.base import SCHEMA_VERSION
from perceus.master.store.dialect import POSTGRESQL, Tx
from perceus.master.store.migrations import for_dialect
from perceus.master.store.models import ContactUpdate, Node
from perceus.master.store.pglisten import NodeChangeListener, redact
from perceus.master.store.records import Write
from perceus.master.store.rules import NODE_COLUMNS, SQLStore, node_from_row

log = structlog.get_logger("perceus.store")
T = TypeVar("T")
Cursor = psycopg.Cursor[tuple[Any, ...]]

# One statement per lookup: the MACs and attributes come along as correlated subqueries (index scans on
# node_mac_node and node_attr's primary key), so a check-in's lookup is a single round trip.
_SELECT = (
    f"SELECT {NODE_COLUMNS},"
    " ARRAY(SELECT mac FROM node_mac WHERE node_id = n.id ORDER BY mac),"
    " (SELECT json_object_agg(key, value) FROM node_attr WHERE node_id = n.id) FROM node n"
)
# Group commit of check-ins in one statement.  The rows arrive as arrays (in check-in order: `ord`); per node
# the last check-in sets status and lastcontact, and the last non-empty ip/boot_id/phase wins, as applying
# the check-ins one after another would.  `locked` takes the row locks in node id order first, so two masters
# committing overlapping batches queue up instead of deadlocking.
_RECORD_CONTACTS = """
WITH u AS (
    SELECT m.node_id, x.ord, x.status, x.ip, x.t, x.boot_id, x.phase
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[])
        WITH ORDINALITY AS x(mac, status, ip, t, boot_id, phase, ord)
    JOIN node_mac m ON m.mac = x.mac
), last AS (
    SELECT node_id,
        (array_agg(status ORDER BY ord DESC))[1] AS status,
        (array_agg(t ORDER BY ord DESC))[1] AS t,
        (array_agg(ip ORDER BY ord DESC) FILTER (WHERE ip <> ''))[1] AS ip,
        (array_agg(boot_id ORDER BY ord DESC) FILTER (WHERE boot_id <> ''))[1] AS boot_id,
        (array_agg(phase ORDER BY ord DESC) FILTER (WHERE phase <> ''))[1] AS phase
    FROM u GROUP BY node_id
), locked AS MATERIALIZED (
    SELECT id FROM node WHERE id IN (SELECT node_id FROM last) ORDER BY id FOR UPDATE
)
UPDATE node n SET status = l.status, ip = COALESCE(l.ip, n.ip), lastcontact = l.t,
    boot_id = COALESCE(l.boot_id, n.boot_id), phase = COALESCE(l.phase, n.phase)
FROM last l JOIN locked k ON k.id = l.node_id
WHERE n.id = l.node_id
"""
# pg_advisory_xact_lock(class, object): 'PERC' plus what the lock guards.
_LOCK_CLASS = 0x50455243
LOCK_NAMES = 1
LOCK_MIGRATE = 2
_RETRIES = 5


class PostgresStore(SQLStore):
    """NodeStore on a PostgreSQL database shared by any number of masters."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, max_size: int = 4, timeout: float = 10.0) -> None:
        self.url = url
        self._where = redact(url)
        try:
            # One plain connection first: it migrates, and an unreachable server fails here with the
            # server's own reason instead of a pool timeout.
            with psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout))) as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise PerceusError(f"cannot open node database {self._where}: {_first_line(exc)}") from None
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            # Checked on checkout: a connection the server dropped (restart, failover) is replaced at once
            # instead of failing the next write; one empty round trip per transaction.
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            name="perceus-store",
        )
        # The hot path (node lookups, the group commit of check-ins): single statements on autocommit
        # connections, so one round trip each; no checkout check (a dropped connection is noticed when its
        # statement fails, and the statement then runs once more after the pool is checked); statements
        # prepared on first use.
        self._fast = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "connect_timeout": max(1, int(timeout))},
            name="perceus-store-fast",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
            self._fast.open(wait=True, timeout=timeout)
        except psycopg_pool.PoolTimeout:
            self._pool.close()
            self._fast.close()
            raise PerceusError(f"cannot open node database {self._where}: no connection within {timeout}s") from None

    # ------------------------------------------------------------------ plumbing
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            # Two masters starting together must not both run the migrations.
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, LOCK_MIGRATE))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise PerceusError(
                    f"node database {self._where} has schema {current}, newer than this Perceus ({SCHEMA_VERSION})"
                )
            for version, statements in for_dialect("postgresql"):
                if version > current:
                    for sql in statements:
                        conn.execute(sql.encode())  # bytes: no %-placeholder parsing of DDL
                    log.info("store_migrated", backend="postgresql", version=version)
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
            elif current != SCHEMA_VERSION:
                conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        """One transaction on a pooled connection; database failures become one-line PerceusErrors."""
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except pgerrors.UniqueViolation as exc:
            # Backstop only: the writes check first under the advisory lock and raise precise errors.
            raise AlreadyExistsError("node", exc.diag.constraint_name or "?", _first_line(exc)) from None
        except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure):
            raise
        except psycopg_pool.PoolTimeout:
            raise PerceusError(f"node database {self._where} unreachable (no connection)") from None
        except psycopg.Error as exc:
            raise PerceusError(f"node database {self._where}: {_first_line(exc)}") from None

    def _run(self, fn: Callable[[Cursor], T]) -> T:
        """Run `fn` (single statements, each atomic on its own) on an autocommit connection of the fast pool.
        Only for what may run twice: a connection found dropped is discarded and `fn` runs once more.
        Deadlocks and serialisation failures are raised as they are, for the caller to retry."""
        for attempt in range(2):
            conn: psycopg.Connection[Any] | None = None
            try:
                with self._fast.connection() as conn, conn.cursor() as cur:
                    return fn(cur)
            except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure):
                raise
            except psycopg.OperationalError as exc:
                if attempt == 0 and conn is not None and (conn.broken or conn.closed):
                    # The server dropped it (restart, failover): the others idle in the pool are likely dead
                    # too, so check them all before the second try.
                    log.info("store_reconnect", error=_first_line(exc))
                    self._fast.check()
                    continue
                raise PerceusError(f"node database {self._where}: {_first_line(exc)}") from None
            except psycopg_pool.PoolTimeout:
                raise PerceusError(f"node database {self._where} unreachable (no connection)") from None
            except psycopg.Error as exc:
                raise PerceusError(f"node database {self._where}: {_first_line(exc)}") from None
        raise AssertionError("unreachable")

    def _retrying(self, fn: Callable[[], T]) -> T:
        """`fn()`, run again when it loses a deadlock or serialisation failure against another master."""
        for attempt in range(_RETRIES):
            try:
                return fn()
            except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise PerceusError(f"node database {self._where}: {_first_line(exc)}") from None
                log.warning("store_retry", reason=type(exc).__name__, attempt=attempt + 1)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _write(self, fn: Callable[[Tx], T], kind: Write) -> T:
        """One write transaction; ADD and RENAME writes hold the name lock, so masters take turns naming."""

        def attempt() -> T:
            with self._tx() as cur:
                if kind in (Write.ADD, Write.RENAME):
                    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, LOCK_NAMES))
                return fn(Tx(cur, POSTGRESQL))

        return self._retrying(attempt)

    def _read(self, fn: Callable[[Tx], T]) -> T:
        return self._run(lambda cur: fn(Tx(cur, POSTGRESQL)))

    def close(self) -> None:
        self._fast.close()
        self._pool.close()

    def listener(self) -> NodeChangeListener:
        """A LISTEN connection for `node_changed` (fd for BusServer.add_reader, `changes()` to drain)."""
        return NodeChangeListener(self.url)

    def schema_version(self) -> int:
        with self._tx() as cur:
            row = cur.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _select(self, tx: Tx, where: str, args: Sequence[Any]) -> list[Node]:
        return [node_from_row(r, r[15], r[16] or {}) for r in tx.execute(f"{_SELECT} {where}", args)]

    def _one(self, where: str, args: Sequence[Any]) -> Node | None:
        # The fast pool's raw cursor: written in %s, one prepared statement, no placeholder rewriting.
        row = self._run(lambda cur: cur.execute(f"{_SELECT} {where}", args).fetchone())
        return None if row is None else node_from_row(row, row[15], row[16] or {})

    # ------------------------------------------------------------------ reads on the hot path
    def get(self, nodeid: str) -> Node | None:
        return self._one("WHERE n.id = (SELECT node_id FROM node_mac WHERE mac = %s)", (nodeid,))

    def find_by_macs(self, macs: Iterable[str]) -> Node | None:
        wanted = list(macs)[:64]
        if not wanted:
            return None
        return self._one("WHERE n.id = (SELECT node_id FROM node_mac WHERE mac = ANY(%s) LIMIT 1)", (wanted,))

    def record_contacts(self, updates: Sequence[ContactUpdate]) -> None:
        if not updates:
            return
        # Group commit: one statement (atomic on its own), the check-ins as arrays; see _RECORD_CONTACTS for
        # how the last check-in of a node wins and why the rows are locked in node order.
        args = (
            [u.nodeid for u in updates],
            [u.status for u in updates],
            [u.ip for u in updates],
            [u.t for u in updates],
            [u.boot_id for u in updates],
            [u.phase for u in updates],
        )
        self._retrying(lambda: self._run(lambda cur: cur.execute(_RECORD_CONTACTS, args)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
