"""PostgreSQL node store (psycopg 3 + a connection pool): the shared backend several masters run on.

Same behaviour as SQLiteStore (the contract tests in tests/integration/store/ run over both).  What differs:
- Name allocation and every write that creates or renames a node hold a transaction-scoped advisory lock, so
  masters enrolling at the same moment queue up instead of racing for the same lowest free name (spec §13:
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

from perceus.errors import AlreadyExistsError, ConflictError, NotFoundError, PerceusError
from perceus.master.config import NodeDefaults
from perceus.master.store.base import EVENTS_PER_NODE, SCHEMA_VERSION, NodeStore
from perceus.master.store.migrations import for_dialect
from perceus.master.store.models import (
    SETTABLE,
    Activation,
    ContactUpdate,
    EnrollRequest,
    ImportOutcome,
    MasterInfo,
    NewNode,
    Node,
    Pending,
    PhaseEvent,
)
from perceus.master.store.naming import allocate_names
from perceus.master.store.pglisten import NodeChangeListener, redact

log = structlog.get_logger("perceus.store")
T = TypeVar("T")
Cursor = psycopg.Cursor[tuple[Any, ...]]

_COLUMNS = {
    "hostname": "hostname",
    "group": "grp",
    "vnfs": "vnfs",
    "enabled": "enabled",
    "debug": "debug",
    "desc": "descr",
    "ip": "ip",
    "status": "status",
    "lastcontact": "lastcontact",
}
# One statement per lookup: the MACs and attributes come along as correlated subqueries (index scans on
# node_mac_node and node_attr's primary key), so a check-in's lookup is a single round trip.
_SELECT = (
    "SELECT n.id, n.nodeid, n.hostname, n.grp, n.vnfs, n.enabled, n.debug, n.descr, n.ip, n.status,"
    " n.lastcontact, n.boot_id, n.phase, n.created, n.updated,"
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


class PostgresStore(NodeStore):
    """NodeStore on a PostgreSQL database shared by any number of masters."""

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

    def _write(self, fn: Callable[[Cursor], T], *, lock_names: bool = False) -> T:
        """Run `fn` in one write transaction, retried when it loses a deadlock against another master."""
        for attempt in range(_RETRIES):
            try:
                with self._tx() as cur:
                    if lock_names:
                        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, LOCK_NAMES))
                    return fn(cur)
            except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise PerceusError(f"node database {self._where}: {_first_line(exc)}") from None
                log.warning("store_retry", reason=type(exc).__name__, attempt=attempt + 1)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

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

    @staticmethod
    def _node(r: tuple[Any, ...]) -> Node:
        return Node(
            nodeid=r[1],
            hostname=r[2],
            group=r[3],
            vnfs=r[4],
            enabled=bool(r[5]),
            debug=r[6],
            desc=r[7],
            ip=r[8],
            status=r[9],
            lastcontact=r[10],
            boot_id=r[11],
            phase=r[12],
            created=r[13],
            updated=r[14],
            macs=tuple(r[15]),
            attrs=r[16] or {},
        )

    def _select(self, where: str, args: Sequence[Any] = ()) -> list[Node]:
        sql = f"{_SELECT} {where}"
        return self._run(lambda cur: [self._node(r) for r in cur.execute(sql, args).fetchall()])

    def _one(self, where: str, args: Sequence[Any]) -> Node | None:
        nodes = self._select(where, args)
        return nodes[0] if nodes else None

    # ------------------------------------------------------------------ reads
    def get(self, nodeid: str) -> Node | None:
        return self._one("WHERE n.id = (SELECT node_id FROM node_mac WHERE mac = %s)", (nodeid,))

    def get_by_hostname(self, hostname: str) -> Node | None:
        return self._one("WHERE n.hostname = %s", (hostname,))

    def find_by_macs(self, macs: Iterable[str]) -> Node | None:
        wanted = list(macs)[:64]
        if not wanted:
            return None
        return self._one("WHERE n.id = (SELECT node_id FROM node_mac WHERE mac = ANY(%s) LIMIT 1)", (wanted,))

    def list_nodes(self) -> list[Node]:
        return self._select("ORDER BY n.hostname")

    def count_by_status(self) -> dict[str, int]:
        with self._tx() as cur:
            return {s: int(c) for s, c in cur.execute("SELECT status, count(*) FROM node GROUP BY status")}

    def groups(self) -> list[str]:
        with self._tx() as cur:
            return [r[0] for r in cur.execute("SELECT DISTINCT grp FROM node WHERE grp <> '' ORDER BY grp")]

    # ------------------------------------------------------------------ writes
    @staticmethod
    def _check_free(cur: Cursor, node: NewNode) -> list[str]:
        macs = [node.nodeid, *[m for m in node.macs if m != node.nodeid]]
        owner = cur.execute(
            "SELECT m.mac, n.hostname FROM node_mac m JOIN node n ON n.id = m.node_id WHERE m.mac = ANY(%s)"
            " ORDER BY array_position(%s, m.mac) LIMIT 1",
            (macs, macs),
        ).fetchone()
        if owner:
            raise AlreadyExistsError("NodeID", owner[0], f"node {owner[1]}")
        if cur.execute("SELECT 1 FROM node WHERE hostname = %s", (node.hostname,)).fetchone():
            raise AlreadyExistsError("hostname", node.hostname)
        return macs

    @classmethod
    def _insert(cls, cur: Cursor, node: NewNode, now: float) -> None:
        macs = cls._check_free(cur, node)
        row = cur.execute(
            "INSERT INTO node (nodeid, hostname, grp, vnfs, enabled, debug, descr, ip, status, lastcontact,"
            " boot_id, phase, created, updated)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,'',0,'','',%s,%s) RETURNING id",
            (
                node.nodeid,
                node.hostname,
                node.group,
                node.vnfs,
                int(node.enabled),
                node.debug,
                node.desc,
                node.ip,
                now,
                now,
            ),
        ).fetchone()
        assert row is not None
        cur.executemany("INSERT INTO node_mac (mac, node_id) VALUES (%s, %s)", [(m, row[0]) for m in macs])
        if node.attrs:
            cur.executemany(
                "INSERT INTO node_attr (node_id, key, value) VALUES (%s, %s, %s)",
                [(row[0], k, v) for k, v in node.attrs.items()],
            )

    def add(self, node: NewNode) -> Node:
        self._write(lambda cur: self._insert(cur, node, time.time()), lock_names=True)
        added = self.get(node.nodeid)
        assert added is not None
        return added

    @staticmethod
    def _used_names(cur: Cursor, defaults: NodeDefaults) -> set[str]:
        pattern = defaults.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = cur.execute("SELECT hostname FROM node WHERE hostname LIKE %s ESCAPE '\\'", (pattern,))
        return {r[0] for r in rows}

    def add_auto(self, nodeid: str, defaults: NodeDefaults, *, nodename: str = "") -> Node:
        def run(cur: Cursor) -> None:
            name = nodename or allocate_names(self._used_names(cur, defaults), defaults, 1)[0]
            new = NewNode(
                nodeid=nodeid,
                hostname=name,
                group=defaults.group,
                vnfs=defaults.vnfs,
                enabled=defaults.enabled,
                debug=defaults.debug,
            )
            self._insert(cur, new, time.time())

        self._write(run, lock_names=True)
        added = self.get(nodeid)
        assert added is not None
        return added

    def enroll(self, requests: Sequence[EnrollRequest], defaults: NodeDefaults) -> list[Node]:
        if not requests:
            return []

        def run(cur: Cursor) -> list[Node]:
            # Under the advisory lock every master sees the others' committed enrollments (READ COMMITTED
            # takes a fresh snapshot per statement), so "lowest free name" is decided one master at a time.
            everything = sorted({m for r in requests for m in (r.nodeid, *r.macs)})
            known = {r[0] for r in cur.execute("SELECT mac FROM node_mac WHERE mac = ANY(%s)", (everything,))}
            fresh: list[EnrollRequest] = []
            seen: set[str] = set()
            for req in requests:
                macs = {req.nodeid, *req.macs}
                if not macs & known and req.nodeid not in seen:
                    fresh.append(req)
                    seen.add(req.nodeid)
            if fresh:
                wanted = [r.nodename for r in fresh]
                # A wished name may be outside the naming pattern, so check the wishes themselves too.
                wishes = [w for w in wanted if w]
                used = self._used_names(cur, defaults) | {
                    r[0] for r in cur.execute("SELECT hostname FROM node WHERE hostname = ANY(%s)", (wishes,))
                }
                taken_wishes = {w for w in wanted if w and (w in used or wanted.count(w) > 1)}
                need = sum(1 for w in wanted if not w or w in taken_wishes)
                names = iter(allocate_names(used | {w for w in wanted if w}, defaults, need))
                now = time.time()
                for req in fresh:
                    name = req.nodename if req.nodename and req.nodename not in taken_wishes else next(names)
                    taken_wishes.add(name)
                    new = NewNode(
                        nodeid=req.nodeid,
                        hostname=name,
                        group=defaults.group,
                        vnfs=defaults.vnfs,
                        enabled=defaults.enabled,
                        debug=defaults.debug,
                        macs=req.macs,
                    )
                    self._insert(cur, new, now)
                cur.execute("DELETE FROM pending WHERE nodeid = ANY(%s)", ([r.nodeid for r in fresh],))
            rows = cur.execute(
                f"{_SELECT} WHERE n.id IN (SELECT node_id FROM node_mac WHERE mac = ANY(%s))", (everything,)
            ).fetchall()
            by_mac = {mac: node for node in map(self._node, rows) for mac in node.macs}
            out: list[Node] = []
            for req in requests:
                node = next((by_mac[m] for m in (req.nodeid, *req.macs) if m in by_mac), None)
                if node is not None:
                    out.append(node)
            return out

        return self._write(run, lock_names=True)

    @staticmethod
    def _ids(cur: Cursor, nodeids: Sequence[str]) -> list[int]:
        found: dict[str, int] = dict(
            cur.execute("SELECT mac, node_id FROM node_mac WHERE mac = ANY(%s)", (list(nodeids),))
        )
        for nodeid in nodeids:
            if nodeid not in found:
                raise NotFoundError("node", nodeid)
        return [int(found[n]) for n in nodeids]

    def update(self, nodeids: Sequence[str], changes: dict[str, Any]) -> int:
        unknown = [k for k in changes if k not in _COLUMNS and not k.startswith("attrs.")]
        if unknown:
            raise ConflictError(f"unknown node attribute {unknown[0]!r} (settable: {', '.join(SETTABLE)})")

        def run(cur: Cursor) -> int:
            ids = self._ids(cur, nodeids)
            if "hostname" in changes:
                if len(ids) > 1:
                    raise ConflictError("refusing to give one hostname to several nodes")
                other = cur.execute("SELECT id FROM node WHERE hostname = %s", (changes["hostname"],)).fetchone()
                if other and (not ids or other[0] != ids[0]):
                    raise AlreadyExistsError("hostname", str(changes["hostname"]))
            cols: list[str] = []
            values: list[Any] = []
            for key, value in changes.items():
                if key in _COLUMNS:
                    cols.append(f"{_COLUMNS[key]} = %s")
                    values.append(int(value) if isinstance(value, bool) else value)
            if cols and ids:
                cols.append("updated = %s")
                values.append(time.time())
                cur.executemany(f"UPDATE node SET {', '.join(cols)} WHERE id = %s", [(*values, i) for i in ids])
            for key, value in changes.items():
                if not key.startswith("attrs.") or not ids:
                    continue
                attr = key.removeprefix("attrs.")
                if value is None or value == "":
                    cur.execute("DELETE FROM node_attr WHERE node_id = ANY(%s) AND key = %s", (ids, attr))
                else:
                    cur.executemany(
                        "INSERT INTO node_attr (node_id, key, value) VALUES (%s, %s, %s)"
                        " ON CONFLICT (node_id, key) DO UPDATE SET value = excluded.value",
                        [(i, attr, str(value)) for i in ids],
                    )
            return len(ids)

        return self._write(run, lock_names="hostname" in changes)

    def delete(self, nodeids: Sequence[str]) -> int:
        def run(cur: Cursor) -> int:
            ids = self._ids(cur, nodeids)
            cur.execute("DELETE FROM node WHERE id = ANY(%s)", (ids,))
            return len(ids)

        return self._write(run)

    def replace(self, old: str, new: str) -> Node:
        def run(cur: Cursor) -> None:
            old_row = cur.execute("SELECT id, nodeid FROM node WHERE hostname = %s", (old,)).fetchone()
            if old_row is None:
                raise NotFoundError("node", old)
            new_row = cur.execute("SELECT id, nodeid FROM node WHERE hostname = %s", (new,)).fetchone()
            if new_row is None:
                raise NotFoundError("node", new)
            if old_row[0] == new_row[0]:
                raise ConflictError(f"cannot replace node {old!r} with itself")
            new_macs = [r[0] for r in cur.execute("SELECT mac FROM node_mac WHERE node_id = %s", (new_row[0],))]
            cur.execute("DELETE FROM node WHERE id = %s", (new_row[0],))
            cur.execute("DELETE FROM node_mac WHERE node_id = %s", (old_row[0],))
            cur.executemany("INSERT INTO node_mac (mac, node_id) VALUES (%s, %s)", [(m, old_row[0]) for m in new_macs])
            cur.execute(
                "UPDATE node SET nodeid = %s, status = '', ip = '', lastcontact = 0, boot_id = '',"
                " phase = '', updated = %s WHERE id = %s",
                (new_row[1], time.time(), old_row[0]),
            )

        self._write(run, lock_names=True)
        node = self.get_by_hostname(old)
        assert node is not None
        return node

    def rename_group(self, old: str, new: str) -> int:
        def run(cur: Cursor) -> int:
            cur.execute("UPDATE node SET grp = %s, updated = %s WHERE grp = %s", (new, time.time(), old))
            return cur.rowcount

        return self._write(run)

    def import_nodes(self, nodes: Sequence[NewNode], *, update: bool) -> ImportOutcome:
        def run(cur: Cursor) -> ImportOutcome:
            added = updated = unchanged = 0
            now = time.time()
            for node in nodes:
                row = cur.execute(
                    "SELECT n.id, n.hostname, n.grp, n.vnfs, n.ip FROM node_mac m"
                    " JOIN node n ON n.id = m.node_id WHERE m.mac = %s",
                    (node.nodeid,),
                ).fetchone()
                if row is None:
                    self._insert(cur, node, now)
                    added += 1
                    continue
                if not update:
                    raise AlreadyExistsError("NodeID", node.nodeid, f"node {row[1]}; use --update to overwrite")
                wanted = (node.hostname, node.group or row[2], node.vnfs or row[3], node.ip or row[4])
                if wanted == tuple(row[1:]):
                    unchanged += 1
                    continue
                clash = cur.execute("SELECT id FROM node WHERE hostname = %s AND id <> %s", (node.hostname, row[0]))
                if clash.fetchone():
                    raise AlreadyExistsError("hostname", node.hostname)
                cur.execute(
                    "UPDATE node SET hostname = %s, grp = %s, vnfs = %s, ip = %s, updated = %s WHERE id = %s",
                    (*wanted, now, row[0]),
                )
                updated += 1
            return ImportOutcome(added=added, updated=updated, unchanged=unchanged)

        return self._write(run, lock_names=True)

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
        for attempt in range(_RETRIES):
            try:
                self._run(lambda cur: cur.execute(_RECORD_CONTACTS, args))
                return
            except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise PerceusError(f"node database {self._where}: {_first_line(exc)}") from None
                log.warning("store_retry", reason=type(exc).__name__, attempt=attempt + 1)
                time.sleep(0.01 * (attempt + 1))

    def record_events(self, events: Sequence[PhaseEvent]) -> None:
        if not events:
            return

        def run(cur: Cursor) -> None:
            cur.executemany(
                "INSERT INTO event (nodeid, boot_id, phase, t, ok, done, detail) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                [(e.nodeid, e.boot_id, e.phase, e.t, int(e.ok), int(e.done), e.detail[:1000]) for e in events],
            )
            cur.executemany(
                "DELETE FROM event WHERE nodeid = %s AND id <= (SELECT id FROM event WHERE nodeid = %s"
                " ORDER BY id DESC LIMIT 1 OFFSET %s)",
                [(n, n, EVENTS_PER_NODE) for n in sorted({e.nodeid for e in events})],
            )

        self._write(run)

    def events(self, nodeid: str, boot_id: str = "") -> list[PhaseEvent]:
        with self._tx() as cur:
            if not boot_id:
                row = cur.execute(
                    "SELECT boot_id FROM event WHERE nodeid = %s ORDER BY id DESC LIMIT 1", (nodeid,)
                ).fetchone()
                if row is None:
                    return []
                boot_id = row[0]
            rows = cur.execute(
                "SELECT nodeid, boot_id, phase, t, ok, done, detail FROM event"
                " WHERE nodeid = %s AND boot_id = %s ORDER BY id",
                (nodeid, boot_id),
            ).fetchall()
        return [
            PhaseEvent(nodeid=r[0], boot_id=r[1], phase=r[2], t=r[3], ok=bool(r[4]), done=bool(r[5]), detail=r[6])
            for r in rows
        ]

    # ------------------------------------------------------------------ enrollment approval
    def note_pending(self, request: EnrollRequest, ip: str, t: float) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO pending (nodeid, macs, ip, first_seen, last_seen, nodename)"
                " VALUES (%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (nodeid) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen,"
                " macs = excluded.macs",
                (request.nodeid, ",".join(request.macs), ip, t, t, request.nodename),
            )

        self._write(run)

    def pending(self) -> list[Pending]:
        with self._tx() as cur:
            rows = cur.execute(
                "SELECT nodeid, macs, ip, first_seen, last_seen, nodename FROM pending ORDER BY first_seen, nodeid"
            ).fetchall()
        return [
            Pending(
                nodeid=r[0],
                macs=tuple(m for m in r[1].split(",") if m),
                ip=r[2],
                first_seen=r[3],
                last_seen=r[4],
                nodename=r[5],
            )
            for r in rows
        ]

    def drop_pending(self, nodeids: Sequence[str]) -> int:
        def run(cur: Cursor) -> int:
            cur.execute("DELETE FROM pending WHERE nodeid = ANY(%s)", (list(nodeids),))
            return cur.rowcount

        return self._write(run)

    # ------------------------------------------------------------------ modules and masters
    def activate(self, activations: Sequence[Activation]) -> int:
        now = time.time()

        def run(cur: Cursor) -> int:
            added = 0
            for a in activations:
                cur.execute(
                    "INSERT INTO module_activation (module, state, scope, target, created)"
                    " VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                    (a.module, a.state, a.scope, a.target, now),
                )
                added += cur.rowcount
            return added

        return self._write(run)

    def deactivate(self, activations: Sequence[Activation]) -> int:
        def run(cur: Cursor) -> int:
            removed = 0
            for a in activations:
                cur.execute(
                    "DELETE FROM module_activation WHERE module = %s AND state = %s AND scope = %s AND target = %s",
                    (a.module, a.state, a.scope, a.target),
                )
                removed += cur.rowcount
            return removed

        return self._write(run)

    def activations(self, module: str = "") -> list[Activation]:
        with self._tx() as cur:
            rows = cur.execute(
                "SELECT module, state, scope, target FROM module_activation"
                + (" WHERE module = %s" if module else "")
                + " ORDER BY module, state, scope, target",
                (module,) if module else (),
            ).fetchall()
        return [Activation(module=r[0], state=r[1], scope=r[2], target=r[3]) for r in rows]

    def heartbeat(self, master: MasterInfo) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO master (id, endpoint, host, pid, started, heartbeat, served)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, host = excluded.host,"
                " pid = excluded.pid, started = excluded.started, heartbeat = excluded.heartbeat,"
                " served = excluded.served",
                (master.id, master.endpoint, master.host, master.pid, master.started, master.heartbeat, master.served),
            )

        self._write(run)

    def masters(self) -> list[MasterInfo]:
        with self._tx() as cur:
            rows = cur.execute(
                "SELECT id, endpoint, host, pid, started, heartbeat, served FROM master ORDER BY id"
            ).fetchall()
        return [
            MasterInfo(id=r[0], endpoint=r[1], host=r[2], pid=r[3], started=r[4], heartbeat=r[5], served=r[6])
            for r in rows
        ]

    def forget_master(self, master_id: str) -> int:
        def run(cur: Cursor) -> int:
            cur.execute("DELETE FROM master WHERE id = %s", (master_id,))
            return cur.rowcount

        return self._write(run)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
