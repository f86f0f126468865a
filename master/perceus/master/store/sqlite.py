"""SQLite node store: WAL, one transaction per call, BEGIN IMMEDIATE for writes so the CLI and the
daemon serialise (Perceus 1.x opened its Berkeley DB files concurrently without locks, 1.x ref §13).

The rules live in rules.py; this file keeps the connection, the migrations, the daemon's lookup caches and
the group commit of check-ins.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from perceus.errors import PerceusError
from perceus.master.config import NodeDefaults
from perceus.master.store.base import SCHEMA_VERSION
from perceus.master.store.dialect import SQLITE, Tx
from perceus.master.store.migrations import MIGRATIONS
from perceus.master.store.models import ContactUpdate, Node
from perceus.master.store.naming import numbers_of
from perceus.master.store.netfs import network_fs
from perceus.master.store.records import Write
from perceus.master.store.rules import NODE_COLUMNS, SQLStore, node_from_row

T = TypeVar("T")
log = structlog.get_logger("perceus.store")
NETFS_HINT = "keep the SQLite store on a local disk (WAL is unsafe here); several masters share PostgreSQL"

# NODE_COLUMNS plus MACs and attributes from correlated subqueries: one statement for a single lookup (the hot
# path); listings load MACs and attributes in two batched queries instead (cheaper for thousands of rows).
_SELECT_ONE = (
    f"SELECT {NODE_COLUMNS},"
    " (SELECT group_concat(mac, ',') FROM node_mac WHERE node_id = n.id),"
    " (SELECT json_group_object(key, value) FROM node_attr WHERE node_id = n.id) FROM node n"
)

# Node lookups cached in the daemon's connection before the cache is simply dropped.
CACHE_MAX = 200_000
# How often lookups ask SQLite whether another process committed (`PRAGMA data_version` is a statement of its
# own): a change made by the CLI is seen within this many seconds, and a burst of check-ins pays one check.
CACHE_RECHECK = 0.05


@dataclass
class _NameCache:
    """Template numbers in use, valid while no other connection has committed."""

    data_version: int
    defaults: NodeDefaults
    numbers: set[int]
    next_free: int = 0  # every number below this is taken (valid while the cache is)


class SQLiteStore(SQLStore):
    """NodeStore on one SQLite file (WAL)."""

    dialect = SQLITE

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._names: _NameCache | None = None
        self._cache: dict[str, Node] = {}
        self._cache_version = -1
        self._cache_checked = -1e9
        path.parent.mkdir(parents=True, exist_ok=True)
        fs = network_fs(path.parent)
        if fs:  # WAL's shared-memory index and locks do not work across hosts (netfs.py)
            log.warning("database_on_network_filesystem", path=str(path), fs=fs, hint=NETFS_HINT)
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._tx = Tx(self._db, SQLITE)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._write(self._migrate, Write.NODES)
        except sqlite3.DatabaseError as exc:
            raise PerceusError(f"cannot open node database {path}: {exc}") from None

    # ------------------------------------------------------------------ plumbing
    def _write(self, fn: Callable[[Tx], T], kind: Write) -> T:
        db = self._db
        if kind is not Write.OTHER:
            self._cache.clear()
            if kind is not Write.ADD:  # ADD keeps the name cache current itself (_inserted, _allocated)
                self._names = None
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self._tx)
        except BaseException:
            db.execute("ROLLBACK")
            self._names = None  # it may hold names of rows that were just rolled back
            self._cache.clear()
            raise
        db.execute("COMMIT")
        return result

    def _read(self, fn: Callable[[Tx], T]) -> T:
        return fn(self._tx)

    def _migrate(self, tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = tx.execute("SELECT version FROM schema_version").fetchone()
        current = row[0] if row else 0
        if current > SCHEMA_VERSION:
            raise PerceusError(
                f"node database {self.path} has schema {current}, newer than this Perceus ({SCHEMA_VERSION})"
            )
        for version, statements in MIGRATIONS:
            if version > current:
                for sql in statements:
                    tx.execute(sql)
        if row is None:
            tx.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        else:
            tx.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._db.close()

    def schema_version(self) -> int:
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def _select(self, tx: Tx, where: str, args: Sequence[Any]) -> list[Node]:
        rows = tx.execute(f"SELECT {NODE_COLUMNS} FROM node n {where}", args).fetchall()
        if not rows:
            return []
        macs: dict[int, list[str]] = {}
        attrs: dict[int, dict[str, str]] = {}
        where, ids = tx.any_of("node_id", [r[0] for r in rows])
        for node_id, mac in tx.execute(f"SELECT node_id, mac FROM node_mac WHERE {where} ORDER BY mac", (ids,)):
            macs.setdefault(node_id, []).append(mac)
        for node_id, key, value in tx.execute(f"SELECT node_id, key, value FROM node_attr WHERE {where}", (ids,)):
            attrs.setdefault(node_id, {})[key] = value
        return [node_from_row(r, macs.get(r[0], ()), attrs.get(r[0], {})) for r in rows]

    def _one(self, where: str, args: Sequence[Any]) -> Node | None:
        # One statement for the hot path (a check-in's lookup): MACs and attributes come from correlated
        # subqueries instead of two more round trips.
        row = self._db.execute(f"{_SELECT_ONE} {where}", args).fetchone()
        if row is None:
            return None
        macs = sorted(row[15].split(",")) if row[15] else ()
        return node_from_row(row, macs, json.loads(row[16]) if row[16] else {})

    # ------------------------------------------------------------------ name allocation without a table scan
    def _taken_numbers(self, tx: Tx, defaults: NodeDefaults) -> tuple[set[int], int]:
        """Used names without a table scan per enrollment: `PRAGMA data_version` changes only when another
        connection commits, and our own writes keep the cache current (or drop it)."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        cache = self._names
        if cache is None or cache.data_version != version or cache.defaults != defaults:
            numbers = numbers_of(self._used_names(tx, defaults), defaults)
            cache = self._names = _NameCache(version, defaults, numbers, next_free=defaults.first)
        return cache.numbers, cache.next_free

    def _allocated(self, numbers: list[int]) -> None:
        if self._names is not None:
            self._names.next_free = numbers[-1] + 1

    def _inserted(self, hostname: str) -> None:
        if self._names is not None:
            self._names.numbers |= numbers_of({hostname}, self._names.defaults)

    # ------------------------------------------------------------------ the daemon's hot path
    def _nodes_by_mac(self) -> dict[str, Node]:
        """Lookups cached per MAC; `PRAGMA data_version` tells when another connection (the CLI, another
        process) committed, and our own writes update or drop the cache.  Saves a query per check-in."""
        now = time.monotonic()
        if now - self._cache_checked >= CACHE_RECHECK:
            self._cache_checked = now
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._cache_version:
                self._cache.clear()
                self._cache_version = version
        return self._cache

    def _remember(self, cache: dict[str, Node], node: Node | None) -> Node | None:
        if node is not None:
            if len(cache) > CACHE_MAX:
                cache.clear()
            for mac in node.macs or (node.nodeid,):
                cache[mac] = node
        return node

    def get(self, nodeid: str) -> Node | None:
        cache = self._nodes_by_mac()
        hit = cache.get(nodeid)
        if hit is not None:
            return hit
        return self._remember(cache, self._one("JOIN node_mac m ON m.node_id = n.id WHERE m.mac = ?", (nodeid,)))

    def get_by_hostname(self, hostname: str) -> Node | None:
        return self._one("WHERE n.hostname = ?", (hostname,))

    def find_by_macs(self, macs: Iterable[str]) -> Node | None:
        macs = list(macs)[:64]
        if not macs:
            return None
        cache = self._nodes_by_mac()
        for mac in macs:
            hit = cache.get(mac)
            if hit is not None:
                return hit
        marks = ",".join("?" * len(macs))
        return self._remember(
            cache, self._one(f"WHERE n.id = (SELECT node_id FROM node_mac WHERE mac IN ({marks}) LIMIT 1)", tuple(macs))
        )

    def record_contacts(self, updates: Sequence[ContactUpdate]) -> None:
        if not updates:
            return
        self._write(
            lambda tx: tx.executemany(
                "UPDATE node SET status = ?, ip = CASE WHEN ? != '' THEN ? ELSE ip END, lastcontact = ?,"
                " boot_id = CASE WHEN ? != '' THEN ? ELSE boot_id END,"
                " phase = CASE WHEN ? != '' THEN ? ELSE phase END"
                " WHERE id = (SELECT node_id FROM node_mac WHERE mac = ?)",
                [(u.status, u.ip, u.ip, u.t, u.boot_id, u.boot_id, u.phase, u.phase, u.nodeid) for u in updates],
            ),
            Write.OTHER,  # the node cache is kept current below instead of dropped
        )
        cache = self._cache
        for u in updates:  # keep cached nodes as current as their rows
            node = cache.get(u.nodeid)
            if node is not None:
                cache_contact(cache, node, u)


def cache_contact(cache: dict[str, Node], node: Node, u: ContactUpdate) -> None:
    """A copy of `node` with the check-in applied, for every MAC it is cached under.  A shallow copy with five
    fields set costs a third of `dataclasses.replace` (which re-runs __init__), and this runs per check-in."""
    fresh = copy.copy(node)
    setattr_ = object.__setattr__  # Node is frozen for its users; this copy is not shared yet
    setattr_(fresh, "status", u.status)
    setattr_(fresh, "lastcontact", u.t)
    if u.ip:
        setattr_(fresh, "ip", u.ip)
    if u.boot_id:
        setattr_(fresh, "boot_id", u.boot_id)
    if u.phase:
        setattr_(fresh, "phase", u.phase)
    for mac in node.macs or (node.nodeid,):
        cache[mac] = fresh
