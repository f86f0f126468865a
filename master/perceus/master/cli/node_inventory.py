"""The hardware inventory on the command line: `perceus node show` (and `--json`), `node list --columns
cpu,memory,…` and `node summary --by memory` (issue 17; 1.x kept no inventory)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perceus.errors import PerceusError, UsageError
from perceus.master.cli.context import CliContext
from perceus.master.cli.nodespec import fold
from perceus.master.config import Paths
from perceus.master.inventory import NodeInventory, human_bytes
from perceus.master.power.records import BmcRecord
from perceus.master.power.store import BmcStore
from perceus.master.store.models import Node

NO_BMC = "no BMC configured"  # power.records.resolve's answer for a node without one
Getter = Callable[[Node, NodeInventory | None], str]
Rendered = tuple[list[dict[str, Any]], list[str], list[str]]  # --json data, header lines, text rows


def _hw(fn: Callable[[NodeInventory], str]) -> Getter:
    return lambda node, inv: fn(inv) if inv is not None else ""


def _disks(inv: NodeInventory) -> str:
    disks = inv.inventory.disks
    return f"{len(disks)} ({human_bytes(sum(d.size for d in disks))})" if disks else "0"


def _nics(inv: NodeInventory) -> str:
    return " ".join(f"{n.name}:{n.driver or '?'}{f'@{n.speed}' if n.speed else ''}" for n in inv.inventory.nics)


# Column name → (header, value).  Node columns first, then what the inventory adds.
COLUMNS: dict[str, tuple[str, Getter]] = {
    "hostname": ("HostName", lambda n, i: n.hostname),
    "nodeid": ("NodeID", lambda n, i: n.nodeid),
    "group": ("GroupName", lambda n, i: n.group),
    "vnfs": ("Vnfs", lambda n, i: n.vnfs),
    "status": ("Status", lambda n, i: n.status),
    "ip": ("IPaddr", lambda n, i: n.ip),
    "cpu": ("CPU", _hw(lambda i: i.inventory.cpu_model)),
    "cpus": ("CPUs", _hw(lambda i: str(i.inventory.cpu_count))),
    "memory": ("Memory", _hw(lambda i: human_bytes(i.inventory.memory))),
    "disks": ("Disks", _hw(_disks)),
    "nics": ("NICs", _hw(_nics)),
    "vendor": ("Vendor", _hw(lambda i: i.inventory.vendor)),
    "product": ("Product", _hw(lambda i: i.inventory.product)),
    "serial": ("Serial", _hw(lambda i: i.inventory.serial)),
    "bmc": ("BMC", _hw(lambda i: i.inventory.bmc)),
    "kernel": ("Kernel", _hw(lambda i: i.inventory.kernel)),
    "changes": ("Changes", _hw(lambda i: str(len(i.changes)))),
}


def columns(spec: str) -> list[str]:
    names = [c.strip().lower() for c in spec.split(",") if c.strip()]
    unknown = [c for c in names if c not in COLUMNS]
    if unknown or not names:
        raise UsageError(f"unknown column {unknown[0] if unknown else spec!r} (columns: {', '.join(COLUMNS)})")
    return names


def _inventories(ctx: CliContext, nodes: Sequence[Node]) -> dict[str, NodeInventory]:
    return ctx.store.inventories([n.nodeid for n in nodes]) if nodes else {}


def table(ctx: CliContext, nodes: Sequence[Node], spec: str) -> Rendered:
    """`node list --columns`: the rows as data, the header line and the text rows."""
    names = columns(spec)
    if "hostname" not in names:
        names.insert(0, "hostname")
    inv = _inventories(ctx, nodes)
    data: list[dict[str, Any]] = [{c: COLUMNS[c][1](n, inv.get(n.nodeid)) for c in names} for n in nodes]
    widths = {c: max([len(COLUMNS[c][0]), *(len(row[c]) for row in data)]) for c in names}
    header = " ".join(f"{COLUMNS[c][0]:<{widths[c]}}" for c in names).rstrip()
    rows = [" ".join(f"{row[c] or '-':<{widths[c]}}" for c in names).rstrip() for row in data]
    return data, [header, "-" * len(header)], rows


def summary_by(ctx: CliContext, nodes: Sequence[Node], key: str) -> Rendered:
    """`node summary --by KEY`: how many nodes share each value (no inventory yet: "(unknown)")."""
    names = columns(key)
    if len(names) != 1:
        raise UsageError(f"--by takes one column, not {key!r}")
    name = names[0]
    get = COLUMNS[name][1]
    inv = _inventories(ctx, nodes)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(get(n, inv.get(n.nodeid)) or "(unknown)", []).append(n.hostname)
    order = sorted(groups, key=lambda v: (-len(groups[v]), v))
    data: list[dict[str, Any]] = [{name: v, "count": len(groups[v]), "nodes": groups[v]} for v in order]
    width = max([len(COLUMNS[name][0]), *(len(v) for v in order)])
    header = f"{COLUMNS[name][0]:<{width}} {'Count':>5}  Nodes"
    rows = [f"{v:<{width}} {len(groups[v]):>5}  {fold(groups[v])}" for v in order]
    return data, [header, "-" * 79], rows


def show_lines(node: Node, inv: NodeInventory | None) -> list[str]:
    """`node show`'s inventory lines, after the node's own (`host: hw.key=value`), changes last."""
    if inv is None:
        return []
    i, host = inv.inventory, node.hostname
    lines = [
        f"{host}: hw.cpu={i.cpu_count} × {i.cpu_model}".rstrip(" ×"),
        f"{host}: hw.memory={human_bytes(i.memory)}",
    ]
    lines += [f"{host}: hw.disk.{d.name}={human_bytes(d.size)} {d.model}".rstrip() for d in i.disks]
    lines += [
        f"{host}: hw.nic.{n.name}={n.mac} {n.driver or '?'} {f'{n.speed} Mb/s' if n.speed else ''}"
        f" link {'up' if n.link else 'down'}".replace("  ", " ")
        for n in i.nics
    ]
    system = {"vendor": i.vendor, "product": i.product, "serial": i.serial, "bmc": i.bmc}
    lines += [f"{host}: hw.{k}={v}" for k, v in system.items() if v]
    lines.append(f"{host}: hw.seen={inv.stage} boot {inv.boot_id or '?'}")
    lines += [f"{host}: hw.change={c.describe()}" for c in inv.changes]
    return lines


def show_data(ctx: CliContext, nodes: Sequence[Node]) -> list[dict[str, object]]:
    """`node show --json`: every node field plus `inventory` (null until the node said hello with one) and
    `bmc`: the configured BMC URL ("" if none) beside the address the node reported (null if none)."""
    return show_records(nodes, _inventories(ctx, nodes), configured_bmcs(ctx.paths, nodes))


def configured_bmcs(paths: Paths, nodes: Sequence[Node]) -> dict[str, str]:
    """nodeid → the BMC URL `node power` would use (no password in it); {} when the BMC file is unreadable
    (`node show` works for whoever can read the database, the 0600 BMC file is root's)."""
    try:
        bmcs = BmcStore.for_paths(paths)
    except PerceusError:
        return {}
    out = {}
    for n in nodes:
        resolved = bmcs.resolve(n)
        if isinstance(resolved, BmcRecord):
            out[n.nodeid] = resolved.url
        elif resolved != NO_BMC:  # half configured ("no BMC password set"): say so (`node bmc` has the rest)
            out[n.nodeid] = f"({resolved})"
    return out


def _reported(inv: NodeInventory | None) -> dict[str, Any] | None:
    return inv.reported_bmc.as_dict() if inv is not None and inv.reported_bmc is not None else None


def bmc_line(node: Node, configured: str, inv: NodeInventory | None) -> list[str]:
    """`host: bmc=URL (bmc reported: ADDRESS)`: what power control uses, and what the node read of its own
    BMC (node-reported, a hint: `node set bmc reported` adopts it); nothing when neither exists."""
    reported = inv.reported_bmc if inv is not None else None
    if not configured and reported is None:
        return []
    hint = f" (bmc reported: {reported.address})" if reported is not None else ""
    return [f"{node.hostname}: bmc={configured or '-'}{hint}"]


def show_records(
    nodes: Sequence[Node], inv: Mapping[str, NodeInventory], bmcs: Mapping[str, str]
) -> list[dict[str, object]]:
    """The `node show --json` shape from nodes, their inventories and configured BMC URLs (shared with
    perceus-web's API)."""
    return [
        {
            **n.as_dict(),
            "inventory": inv[n.nodeid].as_dict() if n.nodeid in inv else None,
            "bmc": {"url": bmcs.get(n.nodeid, ""), "reported": _reported(inv.get(n.nodeid))},
        }
        for n in nodes
    ]


def show_rows(ctx: CliContext, nodes: Sequence[Node], node_lines: Callable[[Node], list[str]]) -> list[str]:
    inv = _inventories(ctx, nodes)
    bmcs = configured_bmcs(ctx.paths, nodes)
    return [
        line
        for n in nodes
        for line in (
            *node_lines(n),
            *bmc_line(n, bmcs.get(n.nodeid, ""), inv.get(n.nodeid)),
            *show_lines(n, inv.get(n.nodeid)),
        )
    ]
