"""The store's record keeping, once, for every SQL backend: boot events, pending nodes, module activations,
master heartbeats and hardware inventory; and the transactions every rule runs in (`Write`, `_write`, `_read`).

The node rules (enrollment and naming, import, replace, update) build on this in rules.py.
"""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from perceus.master.inventory import Change, Inventory, NodeInventory, ReportedBmc, compare
from perceus.master.store.base import EVENTS_PER_NODE, NodeStore
from perceus.master.store.dialect import Tx
from perceus.master.store.models import Activation, EnrollRequest, InventoryReport, MasterInfo, Pending, PhaseEvent

T = TypeVar("T")


class Write(enum.Enum):
    """What a write transaction changes; backends derive locking and cache upkeep from it."""

    OTHER = "other"  # no node rows: events, pending nodes, activations, masters
    NODES = "nodes"  # node rows change or go (names may disappear)
    ADD = "add"  # nodes added under allocated names: one such write at a time, across masters
    RENAME = "rename"  # hostnames change: serialised with ADD writes


class RecordRules(NodeStore):
    """The record-keeping half of the SQL store rules, on a backend's transactions."""

    @abc.abstractmethod
    def _write(self, fn: Callable[[Tx], T], kind: Write) -> T:
        """Run `fn` in one write transaction."""

    @abc.abstractmethod
    def _read(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` (reads only; it may run twice) and return its result."""

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
            reported: dict[str, ReportedBmc] = {}  # a runtime OS that cannot read the BMC keeps stage one's
            for nodeid, stage, boot_id, t, data in tx.execute(
                "SELECT n.nodeid, i.stage, i.boot_id, i.t, i.data FROM node_inventory i"
                f" JOIN node n ON n.id = i.node_id{where} ORDER BY i.t, i.stage",
                args,
            ):  # newest last, so it wins
                inventory = Inventory.from_json(data)
                bmc = ReportedBmc.of(inventory, stage, t) or reported.get(nodeid)
                if bmc is not None:
                    reported[nodeid] = bmc
                out[nodeid] = NodeInventory(inventory, stage, boot_id, t, tuple(changes.get(nodeid, ())), bmc)
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
