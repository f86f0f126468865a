"""The store's node rules, once, for every SQL backend: lookups, enrollment and naming, import, replace, update,
delete (the record keeping beside them, events, pending nodes, activations, masters, inventory: records.py).

A backend (sqlite.py, postgres.py) supplies only what truly differs: how a transaction is opened and
serialised (`_write`, `_read`), how node rows are loaded (`_select`), its dialect, migrations, caches and
its bulk path for check-ins (`record_contacts`).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from perceus.errors import AlreadyExistsError, ConflictError, NotFoundError
from perceus.master.config import NodeDefaults
from perceus.master.store.dialect import Dialect, Tx
from perceus.master.store.models import SETTABLE, EnrollRequest, ImportOutcome, NewNode, Node
from perceus.master.store.naming import allocate_numbers, numbers_of
from perceus.master.store.records import RecordRules, Write

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


class SQLStore(RecordRules):
    """NodeStore rules on top of a backend's transactions and dialect (the record-keeping ones: records.py)."""

    dialect: ClassVar[Dialect]

    # ------------------------------------------------------------------ what a backend supplies
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
