"""The fleet as the dashboard sees it: one snapshot of the store, its rows, counts and what changed since the last.

Read on one dedicated thread (store connections stay on the thread that opened them), at most every
`interval` seconds and only while someone looks (a page, an API call, an SSE client) — so a dashboard nobody
watches costs the master nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perceus.master.cli import output
from perceus.master.cli.nodespec import select
from perceus.master.inventory import Inventory, human_bytes
from perceus.master.store.models import Node, Pending

# Node attributes that describe hardware (importers and the inventory set them), in one-liner order.
HW_KEYS = ("vendor", "product", "model", "cpu", "cpus", "cores", "memory", "mem", "disks", "hw")
_NOT_CONTACT = ("state", "status", "phase", "vnfs", "ip", "group", "hw", "hostname", "stale")
HISTORY = 3600  # samples of nodes-per-phase kept for the boot progress plot (one per refresh)


def hardware_line(attrs: Mapping[str, str], inventory: Inventory | None = None) -> str:
    """`2× Xeon 6248 · 192.0 GiB · 2 disks · Dell R640`: the inventory the node reported (issue 17), else its
    hardware attributes (importers set some), else ''."""
    if inventory is not None:
        parts = [
            f"{inventory.cpu_count}× {inventory.cpu_model}".strip() if inventory.cpu_count else inventory.cpu_model,
            human_bytes(inventory.memory) if inventory.memory else "",
            f"{len(inventory.disks)} disk{'s' * (len(inventory.disks) > 1)}" if inventory.disks else "",
            " ".join(x for x in (inventory.vendor, inventory.product) if x),
        ]
        return " · ".join(p for p in parts if p)
    return " · ".join(attrs[k] for k in HW_KEYS if attrs.get(k))


def state_of(node: Node) -> str:
    """The state the dashboard counts: revoked and disabled first, then the bus's status."""
    if node.attrs.get("revoked"):
        return "revoked"
    if not node.enabled:
        return "disabled"
    return node.status or "new"


def fleet_row(node: Node, timeout: float, now: float, hw: str) -> dict[str, object]:
    """One row of the fleet view (GET /api/v1/fleet, the SSE `nodes` event)."""
    return {
        "hostname": node.hostname,
        "nodeid": node.nodeid,
        "state": state_of(node),
        "status": node.status,
        "phase": node.phase,
        "lastcontact": node.lastcontact,
        "stale": output.is_stale(node, timeout, now),
        "vnfs": node.vnfs,
        "ip": node.ip,
        "group": node.group,
        "hw": hw,
    }


@dataclass(frozen=True)
class Filter:
    """The fleet view's filter: a node range or glob (`n[0000-0127]`), a group, a state."""

    nodes: str = ""
    group: str = ""
    state: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filter:
        return cls(query.get("nodes", "").strip(), query.get("group", "").strip(), query.get("state", "").strip())

    def apply(self, nodes: Sequence[Node]) -> list[Node]:
        chosen = list(nodes) if not self.nodes else select(nodes, [s for s in self.nodes.split() if s])[0]
        if self.group:
            chosen = [n for n in chosen if n.group == self.group]
        if self.state:
            chosen = [n for n in chosen if state_of(n) == self.state]
        return chosen

    def __bool__(self) -> bool:
        return bool(self.nodes or self.group or self.state)


@dataclass
class Snapshot:
    """One consistent read of the store."""

    version: int
    taken: float
    nodes: list[Node]
    pending: list[Pending]
    rows: dict[str, dict[str, object]]
    counts: dict[str, int]
    phases: dict[str, int]
    groups: list[str]

    def by_hostname(self, name: str) -> Node | None:
        for n in self.nodes:
            if n.hostname == name:
                return n
        return None


@dataclass
class Fleet:
    """Successive snapshots, the rows that changed between them and the per-phase history."""

    timeout: float = 600.0
    current: Snapshot | None = None
    history: deque[tuple[float, dict[str, int]]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    inventory: dict[str, Inventory] = field(default_factory=dict)
    contacts_seen: int = 0
    contacts: dict[str, float] = field(default_factory=dict)  # nodes whose only change was a check-in
    _nodes: dict[str, Node] = field(default_factory=dict)
    _inventory_changed: bool = False

    def take(self, nodes: list[Node], pending: list[Pending], now: float | None = None) -> list[dict[str, object]]:
        """Install a new snapshot; returns the rows that differ from the previous one (all on the first) except
        those that only checked in, which land in `contacts` (nodeid → last contact)."""
        now = now or time.time()
        old = self.current
        rows: dict[str, dict[str, object]] = {}
        counts: dict[str, int] = {}
        phases: dict[str, int] = {}
        groups: set[str] = set()
        changed: list[dict[str, object]] = []
        contacts: dict[str, float] = {}
        prev_nodes = self._nodes
        for n in nodes:
            prev_row = old.rows.get(n.nodeid) if old is not None else None
            same = prev_row is not None and (prev_nodes.get(n.nodeid) is n or prev_nodes.get(n.nodeid) == n)
            if (
                same
                and prev_row is not None
                and prev_row["stale"] == output.is_stale(n, self.timeout, now)
                and not self._inventory_changed
            ):
                row = prev_row  # unchanged node: reuse its row (10k nodes: most of them, every snapshot)
            else:
                row = fleet_row(n, self.timeout, now, hardware_line(n.attrs, self.inventory.get(n.nodeid)))
            rows[n.nodeid] = row
            state = str(row["state"])
            counts[state] = counts.get(state, 0) + 1
            phase = n.phase or state
            phases[phase] = phases.get(phase, 0) + 1
            if n.group:
                groups.add(n.group)
            if row is not prev_row and prev_row != row:
                if prev_row is not None and n.lastcontact and n.lastcontact != prev_row.get("lastcontact"):
                    self.contacts_seen += 1
                    if all(row[k] == prev_row[k] for k in _NOT_CONTACT):
                        contacts[n.nodeid] = n.lastcontact  # only checked in: the compact `contacts` event
                        continue
                changed.append(row)
        counts["pending"] = len(pending)
        removed = [] if old is None else [{"nodeid": k, "removed": True} for k in old.rows.keys() - rows.keys()]
        self.current = Snapshot(
            version=(old.version + 1) if old is not None else 1,
            taken=now,
            nodes=nodes,
            pending=pending,
            rows=rows,
            counts=counts,
            phases=phases,
            groups=sorted(groups),
        )
        self.history.append((now, phases))
        self._nodes = {n.nodeid: n for n in nodes}
        self._inventory_changed = False
        self.contacts = contacts
        return changed + removed

    def set_inventory(self, inventory: dict[str, Inventory]) -> None:
        """New inventories: when any differs, every row's hardware line is rebuilt at the next snapshot."""
        if inventory != self.inventory:
            self.inventory = inventory
            self._inventory_changed = True

    def series(self, since: float = 0.0) -> dict[str, Any]:
        """Nodes per phase over time for the boot progress plot: {"t": [...], "phases": {phase: [...]}}."""
        samples = [(t, p) for t, p in self.history if t >= since]
        names: list[str] = sorted({k for _, p in samples for k in p})
        return {"t": [round(t, 3) for t, _ in samples], "phases": {k: [p.get(k, 0) for _, p in samples] for k in names}}


def ordered(rows: Iterable[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(rows, key=lambda r: str(r.get("hostname", "")))
