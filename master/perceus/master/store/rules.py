"""The store's business rules, once, for every SQL backend: enrollment and naming, import, replace, update,
pending nodes, boot events, module activations, master heartbeats.

A backend (sqlite.py, postgres.py) supplies only what truly differs: how a transaction is opened and
serialised (`_write`, `_read`), how node rows are loaded (`_select`), its dialect, migrations, caches and
its bulk path for check-ins (`record_contacts`).
"""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from perceus.errors import AlreadyExistsError, ConflictError, NotFoundError
from perceus.master.config import NodeDefaults
from perceus.master.inventory import Change, Inventory, NodeInventory, compare
from perceus.master.store.base import EVENTS_PER_NODE, NodeStore
from perceus.master.store.dialect import Dialect, Tx
from perceus.master.store.models import (
    SETTABLE,
    Activation,
    EnrollRequest,
    ImportOutcome,
    InventoryReport,
    MasterInfo,
    NewNode,
    Node,
    Pending,
    PhaseEvent,
)
from perceus.master.store.naming import allocate_numbers, numbers_of

T = TypeVar("T")

# Node attribute → column of the node table.
COLUMNS = {
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
# The node row's columns, in the order backends' `_node_row` reads them (after `FROM node n`).
NODE_COLUMNS = (
    "n.id, n.nodeid, n.hostname, n.grp, n.vnfs, n.enabled, n.debug, n.descr, n.ip, n.status,"
    " n.lastcontact, n.boot_id, n.phase, n.created, n.updated"
)


class Write(enum.Enum):
    """What a write transaction changes; backends derive locking and cache upkeep from it."""

    OTHER = "other"  # no node rows: events, pending nodes, activations, masters
    NODES = "nodes"  # node rows change or go (names may disappear)
    ADD = "add"  # nodes added under allocated names: one such write at a time, across masters
    RENAME = "rename"  # hostnames change: serialised with ADD writes


class SQLStore(NodeStore):
    """NodeStore rules on top of a backend's transactions and dialect."""

    dialect: ClassVar[Dialect]

    # ------------------------------------------------------------------ what a backend supplies
    @abc.abstractmethod
    def _write(self, fn: Callable[[Tx], T], kind: Write) -> T:
        """Run `fn` in one write transaction."""

    @abc.abstractmethod
    def _read(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` (reads only; it may run twice) and return its result."""

    @abc.abstractmethod
    def _select(self, tx: Tx, where: str, args: Sequence[Any]) -> list[Node]:
        """Nodes of `SELECT … FROM node n <where>`, with their MACs and attributes."""

    def _taken_numbers(self, tx: Tx, defaults: NodeDefaults) -> tuple[set[int], int]:
        """Template numbers in use, and a number below which all are taken (a backend may cache both)."""
        return numbers_of(self._used_names(tx, defaults), defaults), defaults.first

    def _allocated(self, numbers: list[int]) -> None:
        """Hook: `numbers` were just handed out (lowest first)."""

    def _inserted(self, hostname: str) -> None:
        """Hook: a node named `hostname` was inserted in the current transaction."""

    @staticmethod
    def _used_names(tx: Tx, defaults: NodeDefaults) -> set[str]:
        pattern = defaults.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return {r[0] for r in tx.execute("SELECT hostname FROM node WHERE hostname LIKE ? ESCAPE '\\'", (pattern,))}

    # ------------------------------------------------------------------ reads
    def get_by_hostname(self, hostname: str) -> Node | None:
        nodes = self._read(lambda tx: self._select(tx, "WHERE n.hostname = ?", (hostname,)))
        return nodes[0] if nodes else None

    def list_nodes(self) -> list[Node]:
        return self._read(lambda tx: self._select(tx, "ORDER BY n.hostname", ()))

    def count_by_status(self) -> dict[str, int]:
        return self._read(
            lambda tx: {s: int(c) for s, c in tx.execute("SELECT status, count(*) FROM node GROUP BY status")}
        )

    def groups(self) -> list[str]:
        return self._read(
            lambda tx: [r[0] for r in tx.execute("SELECT DISTINCT grp FROM node WHERE grp <> '' ORDER BY grp")]
        )

    # ------------------------------------------------------------------ adding nodes
    def _insert(self, tx: Tx, node: NewNode, now: float) -> None:
        macs = [node.nodeid, *[m for m in node.macs if m != node.nodeid]]
        where, arg = tx.any_of("m.mac", macs)
        sql = f"SELECT m.mac, n.hostname FROM node_mac m JOIN node n ON n.id = m.node_id WHERE {where}"
        owners = dict(tx.execute(sql, (arg,)))
        for mac in macs:
            if mac in owners:
                raise AlreadyExistsError("NodeID", mac, f"node {owners[mac]}")
        if tx.execute("SELECT 1 FROM node WHERE hostname = ?", (node.hostname,)).fetchone():
            raise AlreadyExistsError("hostname", node.hostname)
        row = tx.execute(
            "INSERT INTO node (nodeid, hostname, grp, vnfs, enabled, debug, descr, ip, status, lastcontact,"
            " boot_id, phase, created, updated) VALUES (?,?,?,?,?,?,?,?,'',0,'','',?,?) RETURNING id",
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
        tx.executemany("INSERT INTO node_mac (mac, node_id) VALUES (?, ?)", [(m, row[0]) for m in macs])
        if node.attrs:
            tx.executemany(
                "INSERT INTO node_attr (node_id, key, value) VALUES (?, ?, ?)",
                [(row[0], k, v) for k, v in node.attrs.items()],
            )
        self._inserted(node.hostname)

    def _allocate(self, tx: Tx, defaults: NodeDefaults, count: int, also_taken: set[str]) -> list[str]:
        """The `count` lowest free names (naming.py's rule), avoiding `also_taken` too."""
        taken, start = self._taken_numbers(tx, defaults)
        extra = numbers_of(also_taken, defaults)
        numbers = allocate_numbers(taken | extra if extra else taken, defaults, count, start=start)
        if numbers:
            self._allocated(numbers)
        return [defaults.name(n) for n in numbers]

    @staticmethod
    def _new(defaults: NodeDefaults, nodeid: str, hostname: str, macs: tuple[str, ...] = ()) -> NewNode:
        return NewNode(
            nodeid=nodeid,
            hostname=hostname,
            group=defaults.group,
            vnfs=defaults.vnfs,
            enabled=defaults.enabled,
            debug=defaults.debug,
            macs=macs,
        )

    def add(self, node: NewNode) -> Node:
        self._write(lambda tx: self._insert(tx, node, time.time()), Write.ADD)
        added = self.get(node.nodeid)
        assert added is not None
        return added

    def add_auto(self, nodeid: str, defaults: NodeDefaults, *, nodename: str = "") -> Node:
        def run(tx: Tx) -> None:
            name = nodename or self._allocate(tx, defaults, 1, set())[0]
            self._insert(tx, self._new(defaults, nodeid, name), time.time())

        self._write(run, Write.ADD)
        added = self.get(nodeid)
        assert added is not None
        return added

    def enroll(self, requests: Sequence[EnrollRequest], defaults: NodeDefaults) -> list[Node]:
        if not requests:
            return []

        def run(tx: Tx) -> list[Node]:
            # ADD writes run one at a time (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock, and READ
            # COMMITTED's fresh snapshot per statement), so "lowest free name" is decided by one master at a time.
            everything = sorted({m for r in requests for m in (r.nodeid, *r.macs)})
            where, arg = tx.any_of("mac", everything)
            known = {r[0] for r in tx.execute(f"SELECT mac FROM node_mac WHERE {where}", (arg,))}
            fresh: list[EnrollRequest] = []
            seen: set[str] = set()
            for req in requests:
                if not {req.nodeid, *req.macs} & known and req.nodeid not in seen:
                    fresh.append(req)
                    seen.add(req.nodeid)
            if fresh:
                self._enroll_fresh(tx, fresh, defaults)
            by_mac = {
                mac: node
                for node in self._select(tx, f"WHERE n.id IN (SELECT node_id FROM node_mac WHERE {where})", (arg,))
                for mac in node.macs
            }
            found = (next((by_mac[m] for m in (r.nodeid, *r.macs) if m in by_mac), None) for r in requests)
            return [node for node in found if node is not None]

        return self._write(run, Write.ADD)

    def _enroll_fresh(self, tx: Tx, fresh: list[EnrollRequest], defaults: NodeDefaults) -> None:
        wanted = [r.nodename for r in fresh]
        # A wished name may be outside the naming pattern, so check the wishes themselves too.
        wishes = sorted({w for w in wanted if w})
        where, arg = tx.any_of("hostname", wishes)
        used = {r[0] for r in tx.execute(f"SELECT hostname FROM node WHERE {where}", (arg,))}
        taken_wishes = {w for w in wanted if w and (w in used or wanted.count(w) > 1)}
        need = sum(1 for w in wanted if not w or w in taken_wishes)
        names = iter(self._allocate(tx, defaults, need, set(wishes)))
        now = time.time()
        for req in fresh:
            name = req.nodename if req.nodename and req.nodename not in taken_wishes else next(names)
            taken_wishes.add(name)
            self._insert(tx, self._new(defaults, req.nodeid, name, req.macs), now)
        where, arg = tx.any_of("nodeid", [r.nodeid for r in fresh])
        tx.execute(f"DELETE FROM pending WHERE {where}", (arg,))

    def import_nodes(self, nodes: Sequence[NewNode], *, update: bool) -> ImportOutcome:
        def run(tx: Tx) -> ImportOutcome:
            added = updated = unchanged = 0
            now = time.time()
            for node in nodes:
                row = tx.execute(
                    "SELECT n.id, n.hostname, n.grp, n.vnfs, n.ip FROM node_mac m JOIN node n ON n.id = m.node_id"
                    " WHERE m.mac = ?",
                    (node.nodeid,),
                ).fetchone()
                if row is None:
                    self._insert(tx, node, now)
                    added += 1
                    continue
                if not update:
                    raise AlreadyExistsError("NodeID", node.nodeid, f"node {row[1]}; use --update to overwrite")
                wanted = (node.hostname, node.group or row[2], node.vnfs or row[3], node.ip or row[4])
                if wanted == tuple(row[1:]):
                    unchanged += 1
                    continue
                if tx.execute("SELECT id FROM node WHERE hostname = ? AND id <> ?", (node.hostname, row[0])).fetchone():
                    raise AlreadyExistsError("hostname", node.hostname)
                tx.execute(
                    "UPDATE node SET hostname = ?, grp = ?, vnfs = ?, ip = ?, updated = ? WHERE id = ?",
                    (*wanted, now, row[0]),
                )
                updated += 1
            return ImportOutcome(added=added, updated=updated, unchanged=unchanged)

        return self._write(run, Write.RENAME)

    # ------------------------------------------------------------------ changing nodes
    @staticmethod
    def _ids(tx: Tx, nodeids: Sequence[str]) -> list[int]:
        where, arg = tx.any_of("mac", list(nodeids))
        found: dict[str, int] = dict(tx.execute(f"SELECT mac, node_id FROM node_mac WHERE {where}", (arg,)))
        for nodeid in nodeids:
            if nodeid not in found:
                raise NotFoundError("node", nodeid)
        return [int(found[n]) for n in nodeids]

    def update(self, nodeids: Sequence[str], changes: dict[str, Any]) -> int:
        unknown = [k for k in changes if k not in COLUMNS and not k.startswith("attrs.")]
        if unknown:
            raise ConflictError(f"unknown node attribute {unknown[0]!r} (settable: {', '.join(SETTABLE)})")

        def run(tx: Tx) -> int:
            ids = self._ids(tx, nodeids)
            if "hostname" in changes:
                if len(ids) > 1:
                    raise ConflictError("refusing to give one hostname to several nodes")
                other = tx.execute("SELECT id FROM node WHERE hostname = ?", (changes["hostname"],)).fetchone()
                if other and (not ids or other[0] != ids[0]):
                    raise AlreadyExistsError("hostname", str(changes["hostname"]))
            if not ids:
                return 0
            cols = [f"{COLUMNS[k]} = ?" for k in changes if k in COLUMNS]
            values = [int(v) if isinstance(v, bool) else v for k, v in changes.items() if k in COLUMNS]
            if cols:
                sql = f"UPDATE node SET {', '.join(cols)}, updated = ? WHERE id = ?"
                now = time.time()
                tx.executemany(sql, [(*values, now, i) for i in ids])
            for key, value in changes.items():
                if not key.startswith("attrs."):
                    continue
                attr = key.removeprefix("attrs.")
                if value is None or value == "":
                    where, arg = tx.any_of("node_id", ids)
                    tx.execute(f"DELETE FROM node_attr WHERE {where} AND key = ?", (arg, attr))
                else:
                    tx.executemany(
                        "INSERT INTO node_attr (node_id, key, value) VALUES (?, ?, ?)"
                        " ON CONFLICT (node_id, key) DO UPDATE SET value = excluded.value",
                        [(i, attr, str(value)) for i in ids],
                    )
            return len(ids)

        return self._write(run, Write.RENAME if "hostname" in changes else Write.NODES)

    def delete(self, nodeids: Sequence[str]) -> int:
        def run(tx: Tx) -> int:
            ids = self._ids(tx, nodeids)
            where, arg = tx.any_of("id", ids)
            tx.execute(f"DELETE FROM node WHERE {where}", (arg,))
            return len(ids)

        return self._write(run, Write.NODES)

    def replace(self, old: str, new: str) -> Node:
        def run(tx: Tx) -> None:
            old_row = tx.execute("SELECT id, nodeid FROM node WHERE hostname = ?", (old,)).fetchone()
            if old_row is None:
                raise NotFoundError("node", old)
            new_row = tx.execute("SELECT id, nodeid FROM node WHERE hostname = ?", (new,)).fetchone()
            if new_row is None:
                raise NotFoundError("node", new)
            if old_row[0] == new_row[0]:
                raise ConflictError(f"cannot replace node {old!r} with itself")
            new_macs = [r[0] for r in tx.execute("SELECT mac FROM node_mac WHERE node_id = ?", (new_row[0],))]
            for table in ("node_inventory", "node_hwchange"):  # the hardware's inventory goes with it
                tx.execute(f"DELETE FROM {table} WHERE node_id = ?", (old_row[0],))
                tx.execute(f"UPDATE {table} SET node_id = ? WHERE node_id = ?", (old_row[0], new_row[0]))
            tx.execute("DELETE FROM node WHERE id = ?", (new_row[0],))
            tx.execute("DELETE FROM node_mac WHERE node_id = ?", (old_row[0],))
            tx.executemany("INSERT INTO node_mac (mac, node_id) VALUES (?, ?)", [(m, old_row[0]) for m in new_macs])
            tx.execute(
                "UPDATE node SET nodeid = ?, status = '', ip = '', lastcontact = 0, boot_id = '', phase = '',"
                " updated = ? WHERE id = ?",
                (new_row[1], time.time(), old_row[0]),
            )

        self._write(run, Write.RENAME)
        node = self.get_by_hostname(old)
        assert node is not None
        return node

    def rename_group(self, old: str, new: str) -> int:
        def run(tx: Tx) -> int:
            return tx.execute("UPDATE node SET grp = ?, updated = ? WHERE grp = ?", (new, time.time(), old)).rowcount

        return self._write(run, Write.NODES)

    # ------------------------------------------------------------------ boot events
    def record_events(self, events: Sequence[PhaseEvent]) -> None:
        if not events:
            return

        def run(tx: Tx) -> None:
            tx.executemany(
                "INSERT INTO event (nodeid, boot_id, phase, t, ok, done, detail) VALUES (?,?,?,?,?,?,?)",
                [(e.nodeid, e.boot_id, e.phase, e.t, int(e.ok), int(e.done), e.detail[:1000]) for e in events],
            )
            tx.executemany(  # keep the newest EVENTS_PER_NODE of each node
                "DELETE FROM event WHERE nodeid = ? AND id <= (SELECT id FROM event WHERE nodeid = ?"
                " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [(n, n, EVENTS_PER_NODE) for n in sorted({e.nodeid for e in events})],
            )

        self._write(run, Write.OTHER)

    def events(self, nodeid: str, boot_id: str = "") -> list[PhaseEvent]:
        def run(tx: Tx) -> list[PhaseEvent]:
            boot = boot_id
            if not boot:
                row = tx.execute("SELECT boot_id FROM event WHERE nodeid = ? ORDER BY id DESC LIMIT 1", (nodeid,))
                latest = row.fetchone()
                if latest is None:
                    return []
                boot = latest[0]
            rows = tx.execute(
                "SELECT nodeid, boot_id, phase, t, ok, done, detail FROM event WHERE nodeid = ? AND boot_id = ?"
                " ORDER BY id",
                (nodeid, boot),
            )
            return [
                PhaseEvent(nodeid=r[0], boot_id=r[1], phase=r[2], t=r[3], ok=bool(r[4]), done=bool(r[5]), detail=r[6])
                for r in rows
            ]

        return self._read(run)

    # ------------------------------------------------------------------ hardware inventory
    def record_inventories(self, reports: Sequence[InventoryReport]) -> list[tuple[InventoryReport, Change]]:
        if not reports:
            return []

        def run(tx: Tx) -> list[tuple[InventoryReport, Change]]:
            fresh: list[tuple[InventoryReport, Change]] = []
            for report in reports:
                row = tx.execute("SELECT node_id FROM node_mac WHERE mac = ?", (report.nodeid,)).fetchone()
                if row is None:
                    continue
                node_id = row[0]
                before = tx.execute(
                    "SELECT data FROM node_inventory WHERE node_id = ? AND stage = ?", (node_id, report.stage)
                ).fetchone()
                held = {
                    r[0]: Change(*r)
                    for r in tx.execute(
                        "SELECT item, kind, since, was, now FROM node_hwchange WHERE node_id = ?", (node_id,)
                    )
                }
                previous = Inventory.from_json(before[0]) if before else None
                changes = compare(previous, report.inventory, held, report.t)
                fresh += [(report, c) for c in changes if held.get(c.item) != c]
                tx.execute("DELETE FROM node_hwchange WHERE node_id = ?", (node_id,))
                tx.executemany(
                    "INSERT INTO node_hwchange (node_id, item, kind, since, was, now) VALUES (?,?,?,?,?,?)",
                    [(node_id, c.item, c.kind, c.since, c.was, c.now) for c in changes],
                )
                tx.execute(
                    "INSERT INTO node_inventory (node_id, stage, boot_id, t, data) VALUES (?,?,?,?,?)"
                    " ON CONFLICT (node_id, stage) DO UPDATE SET boot_id = excluded.boot_id, t = excluded.t,"
                    " data = excluded.data",
                    (node_id, report.stage, report.boot_id, report.t, report.inventory.to_json()),
                )
            return fresh

        return self._write(run, Write.OTHER)

    def inventories(self, nodeids: Sequence[str] | None = None) -> dict[str, NodeInventory]:
        def run(tx: Tx) -> dict[str, NodeInventory]:
            where = ""
            args: tuple[Any, ...] = ()
            if nodeids is not None:
                condition, arg = tx.any_of("n.nodeid", list(nodeids))
                where, args = f" WHERE {condition}", (arg,)
            changes: dict[str, list[Change]] = {}
            for r in tx.execute(
                "SELECT n.nodeid, c.item, c.kind, c.since, c.was, c.now FROM node_hwchange c"
                f" JOIN node n ON n.id = c.node_id{where} ORDER BY c.since, c.item",
                args,
            ):
                changes.setdefault(r[0], []).append(Change(*r[1:]))
            out: dict[str, NodeInventory] = {}
            for nodeid, stage, boot_id, t, data in tx.execute(
                "SELECT n.nodeid, i.stage, i.boot_id, i.t, i.data FROM node_inventory i"
                f" JOIN node n ON n.id = i.node_id{where} ORDER BY i.t, i.stage",
                args,
            ):  # newest last, so it wins
                inventory = Inventory.from_json(data)
                out[nodeid] = NodeInventory(inventory, stage, boot_id, t, tuple(changes.get(nodeid, ())))
            return out

        return self._read(run)

    # ------------------------------------------------------------------ enrollment approval
    def note_pending(self, request: EnrollRequest, ip: str, t: float) -> None:
        self._write(
            lambda tx: tx.execute(
                "INSERT INTO pending (nodeid, macs, ip, first_seen, last_seen, nodename) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (nodeid) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen,"
                " macs = excluded.macs",
                (request.nodeid, ",".join(request.macs), ip, t, t, request.nodename),
            ),
            Write.OTHER,
        )

    def pending(self) -> list[Pending]:
        def run(tx: Tx) -> list[Pending]:
            rows = tx.execute(
                "SELECT nodeid, macs, ip, first_seen, last_seen, nodename FROM pending ORDER BY first_seen, nodeid"
            )
            return [Pending(r[0], tuple(m for m in r[1].split(",") if m), r[2], r[3], r[4], r[5]) for r in rows]

        return self._read(run)

    def drop_pending(self, nodeids: Sequence[str]) -> int:
        def run(tx: Tx) -> int:
            where, arg = tx.any_of("nodeid", list(nodeids))
            return tx.execute(f"DELETE FROM pending WHERE {where}", (arg,)).rowcount

        return self._write(run, Write.OTHER)

    # ------------------------------------------------------------------ module activations and masters
    def activate(self, activations: Sequence[Activation]) -> int:
        now = time.time()
        sql = (
            "INSERT INTO module_activation (module, state, scope, target, created) VALUES (?,?,?,?,?)"
            " ON CONFLICT DO NOTHING"
        )
        return self._write(
            lambda tx: sum(tx.execute(sql, (a.module, a.state, a.scope, a.target, now)).rowcount for a in activations),
            Write.OTHER,
        )

    def deactivate(self, activations: Sequence[Activation]) -> int:
        sql = "DELETE FROM module_activation WHERE module = ? AND state = ? AND scope = ? AND target = ?"
        return self._write(
            lambda tx: sum(tx.execute(sql, (a.module, a.state, a.scope, a.target)).rowcount for a in activations),
            Write.OTHER,
        )

    def activations(self, module: str = "") -> list[Activation]:
        where = " WHERE module = ?" if module else ""
        sql = f"SELECT module, state, scope, target FROM module_activation{where} ORDER BY module, state, scope, target"
        return self._read(
            lambda tx: [Activation(*r) for r in tx.execute(sql, (module,) if module else ())],
        )

    def heartbeat(self, master: MasterInfo) -> None:
        self._write(
            lambda tx: tx.execute(
                "INSERT INTO master (id, endpoint, host, pid, started, heartbeat, served) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, host = excluded.host,"
                " pid = excluded.pid, started = excluded.started, heartbeat = excluded.heartbeat,"
                " served = excluded.served",
                (master.id, master.endpoint, master.host, master.pid, master.started, master.heartbeat, master.served),
            ),
            Write.OTHER,
        )

    def masters(self) -> list[MasterInfo]:
        sql = "SELECT id, endpoint, host, pid, started, heartbeat, served FROM master ORDER BY id"
        return self._read(lambda tx: [MasterInfo(*r) for r in tx.execute(sql)])

    def forget_master(self, master_id: str) -> int:
        return self._write(
            lambda tx: tx.execute("DELETE FROM master WHERE id = ?", (master_id,)).rowcount,
            Write.OTHER,
        )


def node_from_row(row: Sequence[Any], macs: Iterable[str], attrs: dict[str, str]) -> Node:
    """A node row (NODE_COLUMNS, in order) with its MACs and attributes."""
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
        macs=tuple(macs),
        attrs=attrs,
    )
