"""SQLite node store: WAL, one transaction per call, BEGIN IMMEDIATE for writes so the CLI and the
daemon serialise (Perceus 1.x opened its Berkeley DB files concurrently without locks, spec §13)."""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceus.errors import AlreadyExistsError, ConflictError, NotFoundError, PerceusError
from perceus.master.config import NodeDefaults
from perceus.master.store.base import EVENTS_PER_NODE, SCHEMA_VERSION, NodeStore
from perceus.master.store.migrations import MIGRATIONS
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
from perceus.master.store.naming import allocate_numbers, numbers_of

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
_SELECT = (
    "SELECT n.id, n.nodeid, n.hostname, n.grp, n.vnfs, n.enabled, n.debug, n.descr, n.ip, n.status,"
    " n.lastcontact, n.boot_id, n.phase, n.created, n.updated FROM node n"
)


# _SELECT plus MACs and attributes from correlated subqueries: one statement for a single lookup (the hot
# path); listings use _SELECT and two batched queries instead (cheaper for thousands of rows).
_SELECT_ONE = (
    "SELECT n.id, n.nodeid, n.hostname, n.grp, n.vnfs, n.enabled, n.debug, n.descr, n.ip, n.status,"
    " n.lastcontact, n.boot_id, n.phase, n.created, n.updated,"
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
    """Names (and template numbers) in use, valid while no other connection has committed."""

    data_version: int
    template: tuple[str, int, str, int]
    names: set[str]
    numbers: set[int]
    next_free: int = 0  # every number below this is taken (valid while the cache is)


class SQLiteStore(NodeStore):
    """NodeStore on one SQLite file (WAL)."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._names: _NameCache | None = None
        self._cache: dict[str, Node] = {}
        self._cache_version = -1
        self._cache_checked = -1e9
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise PerceusError(f"cannot open node database {path}: {exc}") from None

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _write(self, *, keep_cache: bool = False) -> Iterator[sqlite3.Connection]:
        db = self._db
        if not keep_cache:
            self._cache.clear()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            self._names = None  # it may hold names of rows that were just rolled back
            self._cache.clear()
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise PerceusError(
                    f"node database {self.path} has schema {current}, newer than this Perceus ({SCHEMA_VERSION})"
                )
            for version, statements in MIGRATIONS:
                if version > current:
                    for sql in statements:
                        db.execute(sql)
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            else:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._db.close()

    def schema_version(self) -> int:
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def _hydrate(self, rows: list[tuple[Any, ...]]) -> list[Node]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        macs: dict[int, list[str]] = {}
        attrs: dict[int, dict[str, str]] = {}
        for chunk in range(0, len(ids), 900):
            part = ids[chunk : chunk + 900]
            marks = ",".join("?" * len(part))
            for node_id, mac in self._db.execute(
                f"SELECT node_id, mac FROM node_mac WHERE node_id IN ({marks}) ORDER BY mac", part
            ):
                macs.setdefault(node_id, []).append(mac)
            for node_id, key, value in self._db.execute(
                f"SELECT node_id, key, value FROM node_attr WHERE node_id IN ({marks})", part
            ):
                attrs.setdefault(node_id, {})[key] = value
        return [self._node(r, tuple(macs.get(r[0], ())), attrs.get(r[0], {})) for r in rows]

    def _one(self, where: str, args: tuple[Any, ...]) -> Node | None:
        # One statement for the hot path (a check-in's lookup): MACs and attributes come from correlated
        # subqueries instead of two more round trips.
        row = self._db.execute(f"{_SELECT_ONE} {where}", args).fetchone()
        if row is None:
            return None
        macs = tuple(sorted(row[15].split(","))) if row[15] else ()
        return self._node(row, macs, json.loads(row[16]) if row[16] else {})

    @staticmethod
    def _node(row: tuple[Any, ...], macs: tuple[str, ...], attrs: dict[str, str]) -> Node:
        """A node row (the columns of _SELECT, in order) with its MACs and attributes."""
        return Node(
            nodeid=row[1],
            hostname=row[2],
            group=row[3],
            vnfs=row[4],
            enabled=bool(row[5]),
            debug=row[6],
            desc=row[7],
            ip=row[8],
            status=row[9],
            lastcontact=row[10],
            boot_id=row[11],
            phase=row[12],
            created=row[13],
            updated=row[14],
            macs=macs,
            attrs=attrs,
        )

    # ------------------------------------------------------------------ reads
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

    def list_nodes(self) -> list[Node]:
        return self._hydrate(self._db.execute(f"{_SELECT} ORDER BY n.hostname").fetchall())

    def count_by_status(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT status, count(*) FROM node GROUP BY status").fetchall())

    def groups(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT grp FROM node WHERE grp != '' ORDER BY grp")]

    # ------------------------------------------------------------------ writes
    def _insert(self, db: sqlite3.Connection, node: NewNode, now: float) -> None:
        macs = [node.nodeid, *[m for m in node.macs if m != node.nodeid]]
        for mac in macs:
            owner = db.execute(
                "SELECT n.hostname FROM node_mac m JOIN node n ON n.id = m.node_id WHERE m.mac = ?", (mac,)
            ).fetchone()
            if owner:
                raise AlreadyExistsError("NodeID", mac, f"node {owner[0]}")
        if db.execute("SELECT 1 FROM node WHERE hostname = ?", (node.hostname,)).fetchone():
            raise AlreadyExistsError("hostname", node.hostname)
        cur = db.execute(
            "INSERT INTO node (nodeid, hostname, grp, vnfs, enabled, debug, descr, ip, status, lastcontact,"
            " boot_id, phase, created, updated) VALUES (?,?,?,?,?,?,?,?,'',0,'','',?,?)",
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
        )
        node_id = cur.lastrowid
        if self._names is not None:
            self._names.names.add(node.hostname)
            self._names.numbers |= numbers_of({node.hostname}, _template_defaults(self._names.template))
        db.executemany("INSERT INTO node_mac (mac, node_id) VALUES (?, ?)", [(m, node_id) for m in macs])
        db.executemany(
            "INSERT INTO node_attr (node_id, key, value) VALUES (?, ?, ?)",
            [(node_id, k, v) for k, v in node.attrs.items()],
        )

    def add(self, node: NewNode) -> Node:
        with self._write() as db:
            self._insert(db, node, time.time())
        added = self.get(node.nodeid)
        assert added is not None
        return added

    def _name_cache(self, db: sqlite3.Connection, defaults: NodeDefaults) -> _NameCache:
        """Used names without a table scan per enrollment: `PRAGMA data_version` changes only when another
        connection commits, and our own writes keep the cache current (or drop it)."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        template = (defaults.prefix, defaults.width, defaults.suffix, defaults.first)
        cache = self._names
        if cache is None or cache.data_version != version or cache.template != template:
            names = self._used_names(db, defaults)
            cache = _NameCache(version, template, names, numbers_of(names, defaults), next_free=defaults.first)
            self._names = cache
        return cache

    def _used_names(self, db: sqlite3.Connection, defaults: NodeDefaults) -> set[str]:
        pattern = defaults.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return {r[0] for r in db.execute("SELECT hostname FROM node WHERE hostname LIKE ? ESCAPE '\\'", (pattern,))}

    def add_auto(self, nodeid: str, defaults: NodeDefaults, *, nodename: str = "") -> Node:
        with self._write() as db:
            if nodename:
                name = nodename
            else:
                cache = self._name_cache(db, defaults)
                (number,) = allocate_numbers(cache.numbers, defaults, 1, start=cache.next_free)
                cache.next_free = number + 1
                name = defaults.name(number)
            self._insert(
                db,
                NewNode(
                    nodeid=nodeid,
                    hostname=name,
                    group=defaults.group,
                    vnfs=defaults.vnfs,
                    enabled=defaults.enabled,
                    debug=defaults.debug,
                ),
                time.time(),
            )
        added = self.get(nodeid)
        assert added is not None
        return added

    def enroll(self, requests: Sequence[EnrollRequest], defaults: NodeDefaults) -> list[Node]:
        if not requests:
            return []
        now = time.time()
        with self._write() as db:
            fresh: list[EnrollRequest] = []
            seen: set[str] = set()
            for req in requests:
                macs = [req.nodeid, *req.macs]
                marks = ",".join("?" * len(macs))
                known = db.execute(f"SELECT 1 FROM node_mac WHERE mac IN ({marks})", macs).fetchone()
                if not known and req.nodeid not in seen:
                    fresh.append(req)
                    seen.add(req.nodeid)
            if fresh:
                wanted = [r.nodename for r in fresh]
                # A wished name may be outside the naming pattern, so check the wishes themselves too.
                wishes = sorted({w for w in wanted if w})
                cache = self._name_cache(db, defaults)
                used = {
                    r[0]
                    for r in db.execute(
                        f"SELECT hostname FROM node WHERE hostname IN ({','.join('?' * len(wishes))})", wishes
                    )
                }
                taken_wishes = {w for w in wanted if w and (w in used or wanted.count(w) > 1)}
                need = sum(1 for w in wanted if not w or w in taken_wishes)
                extra = numbers_of(set(wishes), defaults)
                picked = allocate_numbers(cache.numbers | extra if extra else cache.numbers, defaults, need,
                                          start=cache.next_free)  # fmt: skip
                if picked:
                    cache.next_free = picked[-1] + 1
                names = iter(defaults.name(n) for n in picked)
                for req in fresh:
                    name = req.nodename if req.nodename and req.nodename not in taken_wishes else next(names)
                    taken_wishes.add(name)
                    self._insert(
                        db,
                        NewNode(
                            nodeid=req.nodeid,
                            hostname=name,
                            group=defaults.group,
                            vnfs=defaults.vnfs,
                            enabled=defaults.enabled,
                            debug=defaults.debug,
                            macs=req.macs,
                        ),
                        now,
                    )
                db.executemany("DELETE FROM pending WHERE nodeid = ?", [(r.nodeid,) for r in fresh])
        out: list[Node] = []
        for req in requests:
            node = self.find_by_macs([req.nodeid, *req.macs])
            if node is not None:
                out.append(node)
        return out

    def update(self, nodeids: Sequence[str], changes: dict[str, Any]) -> int:
        self._names = None
        now = time.time()
        with self._write() as db:
            ids = self._ids(db, nodeids)
            if "hostname" in changes:
                if len(ids) > 1:
                    raise ConflictError("refusing to give one hostname to several nodes")
                other = db.execute("SELECT id FROM node WHERE hostname = ?", (changes["hostname"],)).fetchone()
                if other and (not ids or other[0] != ids[0]):
                    raise AlreadyExistsError("hostname", str(changes["hostname"]))
            cols: list[str] = []
            values: list[Any] = []
            for key, value in changes.items():
                if key in _COLUMNS:
                    cols.append(f"{_COLUMNS[key]} = ?")
                    values.append(int(value) if isinstance(value, bool) else value)
            if cols:
                cols.append("updated = ?")
                values.append(now)
                db.executemany(f"UPDATE node SET {', '.join(cols)} WHERE id = ?", [(*values, i) for i in ids])
            for key, value in changes.items():
                if key.startswith("attrs."):
                    attr = key.removeprefix("attrs.")
                    if value is None or value == "":
                        db.executemany("DELETE FROM node_attr WHERE node_id = ? AND key = ?", [(i, attr) for i in ids])
                    else:
                        db.executemany(
                            "INSERT INTO node_attr (node_id, key, value) VALUES (?, ?, ?)"
                            " ON CONFLICT(node_id, key) DO UPDATE SET value = excluded.value",
                            [(i, attr, str(value)) for i in ids],
                        )
                elif key not in _COLUMNS:
                    raise ConflictError(f"unknown node attribute {key!r} (settable: {', '.join(SETTABLE)})")
            return len(ids)

    def _ids(self, db: sqlite3.Connection, nodeids: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for nodeid in nodeids:
            row = db.execute("SELECT node_id FROM node_mac WHERE mac = ?", (nodeid,)).fetchone()
            if row is None:
                raise NotFoundError("node", nodeid)
            ids.append(row[0])
        return ids

    def delete(self, nodeids: Sequence[str]) -> int:
        self._names = None
        with self._write() as db:
            ids = self._ids(db, nodeids)
            db.executemany("DELETE FROM node WHERE id = ?", [(i,) for i in ids])
            return len(ids)

    def replace(self, old: str, new: str) -> Node:
        self._names = None
        with self._write() as db:
            old_row = db.execute("SELECT id, nodeid FROM node WHERE hostname = ?", (old,)).fetchone()
            if old_row is None:
                raise NotFoundError("node", old)
            new_row = db.execute("SELECT id, nodeid FROM node WHERE hostname = ?", (new,)).fetchone()
            if new_row is None:
                raise NotFoundError("node", new)
            if old_row[0] == new_row[0]:
                raise ConflictError(f"cannot replace node {old!r} with itself")
            new_macs = [r[0] for r in db.execute("SELECT mac FROM node_mac WHERE node_id = ?", (new_row[0],))]
            db.execute("DELETE FROM node WHERE id = ?", (new_row[0],))
            db.execute("DELETE FROM node_mac WHERE node_id = ?", (old_row[0],))
            db.executemany("INSERT INTO node_mac (mac, node_id) VALUES (?, ?)", [(m, old_row[0]) for m in new_macs])
            db.execute(
                "UPDATE node SET nodeid = ?, status = '', ip = '', lastcontact = 0, boot_id = '', phase = '',"
                " updated = ? WHERE id = ?",
                (new_row[1], time.time(), old_row[0]),
            )
        node = self.get_by_hostname(old)
        assert node is not None
        return node

    def rename_group(self, old: str, new: str) -> int:
        self._names = None
        with self._write() as db:
            return db.execute("UPDATE node SET grp = ?, updated = ? WHERE grp = ?", (new, time.time(), old)).rowcount

    def import_nodes(self, nodes: Sequence[NewNode], *, update: bool) -> ImportOutcome:
        self._names = None
        added = updated = unchanged = 0
        now = time.time()
        with self._write() as db:
            for node in nodes:
                row = db.execute(
                    "SELECT n.id, n.hostname, n.grp, n.vnfs, n.ip FROM node_mac m JOIN node n ON n.id = m.node_id"
                    " WHERE m.mac = ?",
                    (node.nodeid,),
                ).fetchone()
                if row is None:
                    self._insert(db, node, now)
                    added += 1
                    continue
                if not update:
                    raise AlreadyExistsError("NodeID", node.nodeid, f"node {row[1]}; use --update to overwrite")
                wanted = (node.hostname, node.group or row[2], node.vnfs or row[3], node.ip or row[4])
                if wanted == tuple(row[1:]):
                    unchanged += 1
                    continue
                clash = db.execute("SELECT id FROM node WHERE hostname = ? AND id != ?", (node.hostname, row[0]))
                if clash.fetchone():
                    raise AlreadyExistsError("hostname", node.hostname)
                db.execute(
                    "UPDATE node SET hostname = ?, grp = ?, vnfs = ?, ip = ?, updated = ? WHERE id = ?",
                    (*wanted, now, row[0]),
                )
                updated += 1
        return ImportOutcome(added=added, updated=updated, unchanged=unchanged)

    def record_contacts(self, updates: Sequence[ContactUpdate]) -> None:
        if not updates:
            return
        with self._write(keep_cache=True) as db:
            db.executemany(
                "UPDATE node SET status = ?, ip = CASE WHEN ? != '' THEN ? ELSE ip END, lastcontact = ?,"
                " boot_id = CASE WHEN ? != '' THEN ? ELSE boot_id END,"
                " phase = CASE WHEN ? != '' THEN ? ELSE phase END"
                " WHERE id = (SELECT node_id FROM node_mac WHERE mac = ?)",
                [(u.status, u.ip, u.ip, u.t, u.boot_id, u.boot_id, u.phase, u.phase, u.nodeid) for u in updates],
            )
        cache = self._cache
        for u in updates:  # keep cached nodes as current as their rows
            node = cache.get(u.nodeid)
            if node is not None:
                cache_contact(cache, node, u)

    def record_events(self, events: Sequence[PhaseEvent]) -> None:
        if not events:
            return
        with self._write(keep_cache=True) as db:
            db.executemany(
                "INSERT INTO event (nodeid, boot_id, phase, t, ok, done, detail) VALUES (?,?,?,?,?,?,?)",
                [(e.nodeid, e.boot_id, e.phase, e.t, int(e.ok), int(e.done), e.detail[:1000]) for e in events],
            )
            for nodeid in {e.nodeid for e in events}:
                db.execute(
                    "DELETE FROM event WHERE nodeid = ? AND id <= (SELECT id FROM event WHERE nodeid = ?"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (nodeid, nodeid, EVENTS_PER_NODE),
                )

    def events(self, nodeid: str, boot_id: str = "") -> list[PhaseEvent]:
        if not boot_id:
            row = self._db.execute(
                "SELECT boot_id FROM event WHERE nodeid = ? ORDER BY id DESC LIMIT 1", (nodeid,)
            ).fetchone()
            if row is None:
                return []
            boot_id = row[0]
        return [
            PhaseEvent(nodeid=r[0], boot_id=r[1], phase=r[2], t=r[3], ok=bool(r[4]), done=bool(r[5]), detail=r[6])
            for r in self._db.execute(
                "SELECT nodeid, boot_id, phase, t, ok, done, detail FROM event WHERE nodeid = ? AND boot_id = ?"
                " ORDER BY id",
                (nodeid, boot_id),
            )
        ]

    def note_pending(self, request: EnrollRequest, ip: str, t: float) -> None:
        with self._write(keep_cache=True) as db:
            db.execute(
                "INSERT INTO pending (nodeid, macs, ip, first_seen, last_seen, nodename) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(nodeid) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen,"
                " macs = excluded.macs",
                (request.nodeid, ",".join(request.macs), ip, t, t, request.nodename),
            )

    def pending(self) -> list[Pending]:
        return [
            Pending(
                nodeid=r[0],
                macs=tuple(m for m in r[1].split(",") if m),
                ip=r[2],
                first_seen=r[3],
                last_seen=r[4],
                nodename=r[5],
            )
            for r in self._db.execute(
                "SELECT nodeid, macs, ip, first_seen, last_seen, nodename FROM pending ORDER BY first_seen"
            )
        ]

    def drop_pending(self, nodeids: Sequence[str]) -> int:
        with self._write() as db:
            return sum(db.execute("DELETE FROM pending WHERE nodeid = ?", (n,)).rowcount for n in nodeids)

    # ------------------------------------------------------------------ modules and masters
    def activate(self, activations: Sequence[Activation]) -> int:
        now = time.time()
        with self._write(keep_cache=True) as db:
            return sum(
                db.execute(
                    "INSERT INTO module_activation (module, state, scope, target, created) VALUES (?,?,?,?,?)"
                    " ON CONFLICT DO NOTHING",
                    (a.module, a.state, a.scope, a.target, now),
                ).rowcount
                for a in activations
            )

    def deactivate(self, activations: Sequence[Activation]) -> int:
        with self._write(keep_cache=True) as db:
            return sum(
                db.execute(
                    "DELETE FROM module_activation WHERE module = ? AND state = ? AND scope = ? AND target = ?",
                    (a.module, a.state, a.scope, a.target),
                ).rowcount
                for a in activations
            )

    def activations(self, module: str = "") -> list[Activation]:
        sql = "SELECT module, state, scope, target FROM module_activation"
        rows = self._db.execute(
            sql + (" WHERE module = ?" if module else "") + " ORDER BY module, state, scope, target",
            (module,) if module else (),
        )
        return [Activation(module=r[0], state=r[1], scope=r[2], target=r[3]) for r in rows]

    def heartbeat(self, master: MasterInfo) -> None:
        with self._write(keep_cache=True) as db:
            db.execute(
                "INSERT INTO master (id, endpoint, host, pid, started, heartbeat, served) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT(id) DO UPDATE SET endpoint = excluded.endpoint, host = excluded.host,"
                " pid = excluded.pid, started = excluded.started, heartbeat = excluded.heartbeat,"
                " served = excluded.served",
                (master.id, master.endpoint, master.host, master.pid, master.started, master.heartbeat, master.served),
            )

    def masters(self) -> list[MasterInfo]:
        return [
            MasterInfo(id=r[0], endpoint=r[1], host=r[2], pid=r[3], started=r[4], heartbeat=r[5], served=r[6])
            for r in self._db.execute(
                "SELECT id, endpoint, host, pid, started, heartbeat, served FROM master ORDER BY id"
            )
        ]

    def forget_master(self, master_id: str) -> int:
        with self._write(keep_cache=True) as db:
            return db.execute("DELETE FROM master WHERE id = ?", (master_id,)).rowcount


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


def _template_defaults(template: tuple[str, int, str, int]) -> NodeDefaults:
    prefix, width, suffix, _ = template
    return NodeDefaults(
        prefix=prefix, width=width, suffix=suffix, group="", vnfs="", enabled=True, first=0, total=10**width, debug=0
    )
