"""`perceus node …` (1.x ref §4.4): add, delete, list, replace, set, show, status, summary, plus
pending/approve/revoke (enrollment policy, issue 10), sync (push "check in now") and timeline (per-node boot phases)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from perceus.errors import NotFoundError, UsageError
from perceus.master.cli import node_inventory, output
from perceus.master.cli.context import CliContext
from perceus.master.cli.nodespec import fold, select
from perceus.master.cli.power import BMC_KEYS, set_bmc
from perceus.master.config import Paths
from perceus.master.netmgr import nfs_status
from perceus.master.nodeattrs import canonical_key, parse_value, valid_hostname
from perceus.master.security.audit import AuditLog
from perceus.master.store.models import DAEMON_OWNED, EnrollRequest, NewNode, Node, Pending, PhaseEvent
from perceus.protocol import hwaddr


def register(sub: Any) -> None:
    p = sub.add_parser("node", help="add, change and inspect nodes")
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))

    v = verbs.add_parser("add", help="add a node by hardware address (NodeID)")
    v.add_argument("nodeid", help="MAC (or 20-octet IPoIB) address")
    v.add_argument("hostname", nargs="?", default="", help="name (default: next free from defaults.conf)")
    v.add_argument("--group", default=None)
    v.add_argument("--vnfs", default=None)
    v.add_argument("--ip", default="")
    v.set_defaults(func=add)

    for name, func, hlp in (
        ("list", list_, "hostnames of matching nodes"),
        ("status", status, "state, address and time since last check-in"),
        ("summary", summary, "group, enabled flag and capsule"),
        ("show", show, "every attribute"),
    ):
        v = verbs.add_parser(name, help=hlp)
        v.add_argument("nodes", nargs="*", default=["*"], help="names, globs (n00*) or ranges (n[0001-0128])")
        v.set_defaults(func=func)
        if name == "list":
            v.add_argument("--columns", help=f"a table of these columns ({','.join(node_inventory.COLUMNS)})")
        if name == "summary":
            v.add_argument("--by", help="count nodes per value of one column instead (memory, cpu, vendor, …)")

    v = verbs.add_parser("set", help="set an attribute: set KEY VALUE NODES… (or KEY=VALUE NODES…)")
    v.add_argument("args", nargs="+", metavar="KEY VALUE NODE")
    v.set_defaults(func=set_)

    v = verbs.add_parser("delete", help="remove nodes")
    v.add_argument("nodes", nargs="+")
    v.set_defaults(func=delete)

    v = verbs.add_parser("replace", help="new hardware takes over an old node's name and attributes")
    v.add_argument("old")
    v.add_argument("new")
    v.set_defaults(func=replace)

    v = verbs.add_parser("pending", help="unknown nodes waiting for approval (enrollment policy approve)")
    v.set_defaults(func=pending)

    v = verbs.add_parser("approve", help="enroll pending nodes by MAC (or all of them)")
    v.add_argument("macs", nargs="*")
    v.add_argument("--all", action="store_true", help="approve every pending node, oldest first")
    v.set_defaults(func=approve)

    v = verbs.add_parser("revoke", help="cut nodes off the bus at once (key refused, session dropped)")
    v.add_argument("nodes", nargs="+", help="names, globs or ranges")
    v.add_argument("--undo", action="store_true", help="lift a revocation (the node may say hello again)")
    v.set_defaults(func=revoke)

    v = verbs.add_parser("sync", help="ask running nodes to check in now")
    v.add_argument("nodes", nargs="*", default=["*"])
    v.set_defaults(func=sync)

    v = verbs.add_parser("timeline", help="boot phases of a node's latest (or given) boot")
    v.add_argument("node")
    v.add_argument("--boot-id", default="")
    v.set_defaults(func=timeline)

    from perceus.master.cli.module import register_exec  # `node exec` belongs to the xcpu module

    register_exec(verbs)

    from perceus.master.cli.console import register_console  # `node console`, `node log` (issue 19)
    from perceus.master.cli.power import register_power  # `node power`, `node bmc` (issue 19)

    register_power(verbs)
    register_console(verbs)

    from perceus.master.cli.reprovision import register_reprovision  # `node reprovision` (issue 19)

    register_reprovision(verbs)


# ---------------------------------------------------------------------------------------------- helpers


def _select(ctx: CliContext, specs: Sequence[str], *, required: bool = True) -> list[Node]:
    nodes, missing = select(ctx.store.list_nodes(), specs, by_nodeid=ctx.by_nodeid)
    if not nodes and (required or list(specs) != ["*"]):
        raise NotFoundError("node", specs[0]) if len(specs) == 1 else _none(specs)
    for name in missing:
        if name != "*":
            ctx.warn(f"node '{name}' does not exist")
    return nodes


def _none(specs: Sequence[str]) -> NotFoundError:
    err = NotFoundError("node", " ".join(specs))
    err.message = "no nodes found matching " + " ".join(repr(s) for s in specs)
    return err


def _changed(ctx: CliContext) -> None:
    ctx.notify("nodes_changed")


# ---------------------------------------------------------------------------------------------- verbs


def add(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodeid = hwaddr.normalize(ns.nodeid)
    defaults = ctx.defaults
    if ns.hostname and not valid_hostname(ns.hostname):
        raise UsageError(f"invalid hostname {ns.hostname!r}")
    group = parse_value("group", ns.group) if ns.group is not None else defaults.group
    vnfs = parse_value("vnfs", ns.vnfs) if ns.vnfs is not None else defaults.vnfs
    if vnfs and not (ctx.paths.vnfs / str(vnfs)).is_dir():  # 1.x warned and added the node anyway
        where = "" if ns.vnfs is not None else f" (Vnfs Name in {ctx.paths.defaults_conf})"
        ctx.warn(f"VNFS '{vnfs}'{where} does not exist; the node waits until it is imported")
    ip = parse_value("ip", ns.ip)
    if ns.hostname:
        node = ctx.store.add(
            NewNode(
                nodeid=nodeid,
                hostname=ns.hostname,
                group=group,
                vnfs=vnfs,
                ip=ip,
                enabled=defaults.enabled,
                debug=defaults.debug,
            )
        )
    else:
        node = ctx.store.add_auto(nodeid, defaults)
        if (group, vnfs, ip) != (defaults.group, defaults.vnfs, ""):
            ctx.store.update([node.nodeid], {"group": group, "vnfs": vnfs, "ip": ip})
            node = ctx.store.get(node.nodeid) or node
    _changed(ctx)
    if ctx.json:
        ctx.emit_json(node.as_dict())
    else:
        ctx.info(f"Node '{node.hostname}' has been added to Perceus")
    return 0


def render(
    ctx: CliContext,
    nodes: Sequence[Node],
    *,
    data: Callable[[], object],
    rows: Callable[[], Iterable[str]],
    header: Sequence[str] = (),
) -> int:
    """The read verbs' one shape (node and group): `--json` data, or a header (hidden by -q) and text rows;
    no node at all is a warning and exit 1, as in Perceus 1.x."""
    if ctx.json:
        ctx.emit_json(data())
        return 0 if nodes else 1
    if not nodes:
        ctx.warn("No nodes found")
        return 1
    for line in header:
        ctx.info(line)
    for row in rows():
        ctx.out(row)
    return 0


def status_data(nodes: Sequence[Node], timeout: float, now: float) -> list[dict[str, object]]:
    return [
        {
            "hostname": n.hostname,
            "nodeid": n.nodeid,
            "status": n.status,
            "ip": n.ip,
            "phase": n.phase,
            "lastcontact": n.lastcontact,
            "seconds_since": (now - n.lastcontact) if n.lastcontact else None,
            "stale": output.is_stale(n, timeout, now),
        }
        for n in sorted(nodes, key=lambda n: (n.group, n.hostname))
    ]


def summary_data(nodes: Sequence[Node]) -> list[dict[str, object]]:
    return [{"hostname": n.hostname, "group": n.group, "enabled": n.enabled, "vnfs": n.vnfs} for n in nodes]


def pending_data(rows: Sequence[Pending]) -> list[dict[str, object]]:
    """`node pending --json` (and the web API's /api/v1/pending)."""
    return [
        {
            "nodeid": p.nodeid,
            "macs": list(p.macs),
            "ip": p.ip,
            "first_seen": p.first_seen,
            "last_seen": p.last_seen,
            "nodename": p.nodename,
        }
        for p in rows
    ]


def timeline_data(events: Sequence[PhaseEvent]) -> list[dict[str, object]]:
    """`node timeline --json` (and the web API's /api/v1/nodes/{name}/timeline)."""
    return [e.as_dict() for e in events]


def list_(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _select(ctx, ns.nodes, required=False)
    if ns.columns:
        data, header, rows = node_inventory.table(ctx, nodes, ns.columns)
        return render(ctx, nodes, data=lambda: data, header=header, rows=lambda: rows)
    return render(ctx, nodes, data=lambda: [n.as_dict() for n in nodes], rows=lambda: (n.hostname for n in nodes))


def status_extras(paths: Paths) -> tuple[set[str], dict[str, str]]:
    """What `node status` adds from outside the store: swarm peers that served a chunk failing verification
    (issue 21) and each node's boot-storm queue position + ETA from the running bus (issue 18)."""
    from perceus.master.capsule import pacing
    from perceus.master.capsule.swarm_bus import excluded_peers

    return excluded_peers(paths), pacing.queue_view(paths.control_socket)


def status_records(
    nodes: Sequence[Node], timeout: float, now: float, bad: set[str], queue: dict[str, str]
) -> list[dict[str, object]]:
    """`node status --json` (and the web API's /api/v1/status)."""
    return [
        r | {"swarm_excluded": r["nodeid"] in bad, "capsule_queue": queue.get(str(r["nodeid"]))}
        for r in status_data(nodes, timeout, now)
    ]


def status(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _select(ctx, ns.nodes, required=False)
    timeout, now = ctx.config.node_timeout, time.time()
    bad, queue = status_extras(ctx.paths)
    nfs = nfs_status.query(ctx.paths.control_socket)
    nfs_down = nfs_status.down_capsules(nfs)
    if nfs_down and any(n.vnfs in nfs_down for n in nodes):
        ctx.warn(f"NFS server for hybrid capsules is not serving: {nfs_status.describe(nfs)}")
    return render(
        ctx,
        nodes,
        data=lambda: status_records(nodes, timeout, now, bad, queue),
        header=(output.STATUS_HEADER, output.RULE),
        rows=lambda: [
            row
            + ("  SWARM-EXCLUDED (served a bad chunk)" if n.nodeid in bad else "")
            + (f"  {queue[n.nodeid].upper()}" if n.nodeid in queue else "")
            + ("  NFS-DOWN (hybrid capsule not served)" if n.vnfs in nfs_down else "")
            + (f"  FAILED: {reason}" if (reason := _failure(ctx, n)) else "")
            for n, row in zip(
                sorted(nodes, key=lambda n: (n.group, n.hostname)), output.status_rows(nodes, timeout, now), strict=True
            )
        ],
    )


def _failure(ctx: CliContext, node: Node) -> str:
    """Why a node in phase `failed` stopped (a refused stateful install, …): its latest boot's last failed entry."""
    if node.phase != "failed":
        return ""
    bad = [e.detail for e in ctx.store.events(node.nodeid) if not e.ok and e.detail]
    return bad[-1] if bad else ""


def summary(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _select(ctx, ns.nodes, required=False)
    if ns.by:
        data, header, rows = node_inventory.summary_by(ctx, nodes, ns.by)
        return render(ctx, nodes, data=lambda: data, header=header, rows=lambda: rows)
    return render(
        ctx,
        nodes,
        data=lambda: summary_data(nodes),
        header=(output.SUMMARY_HEADER, output.RULE),
        rows=lambda: output.summary_rows(nodes),
    )


def show(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _select(ctx, ns.nodes, required=False)
    return render(
        ctx,
        nodes,
        data=lambda: node_inventory.show_data(ctx, nodes),
        rows=lambda: node_inventory.show_rows(ctx, nodes, output.show_lines),
    )


def parse_set_args(ctx: CliContext, args: Sequence[str]) -> tuple[str, str, list[str]]:
    """`KEY VALUE NODE…`, or the obsolete `KEY=VALUE NODE…` (accepted with the original's warning)."""
    if args and "=" in args[0] and not args[0].startswith("="):
        key, _, value = args[0].partition("=")
        ctx.warn(f"Rewriting obsolete syntax ({args[0]})")
        targets = list(args[1:])
    elif len(args) >= 2:
        key, value, targets = args[0], args[1], list(args[2:])
    else:
        raise UsageError("usage: node set KEY VALUE NODE...")
    if not targets:
        raise UsageError("usage: node set KEY VALUE NODE... (no nodes given)")
    return key, value, targets


def apply_set(ctx: CliContext, key: str, value: str, nodes: list[Node]) -> int:
    """Validate and store one attribute on `nodes` after confirmation; shared with `group set`."""
    key = canonical_key(key)
    converted = parse_value(key, value)
    if key == "vnfs" and converted and not (ctx.paths.vnfs / str(converted)).is_dir():
        raise NotFoundError("VNFS", str(converted))
    if key == "hostname" and len(nodes) > 1:
        raise UsageError("hostname can be set on one node at a time")
    note = " (perceus-bus overwrites this on the next check-in)" if key in DAEMON_OWNED else ""
    if not ctx.confirm(
        f"Are you sure you wish to set '{key}={value}' on {len(nodes)} nodes?{note}",
        output.confirm_rows(nodes),
    ):
        ctx.info("Nothing changed.")
        return 1
    known = key in ("hostname", "group", "vnfs", "enabled", "debug", "desc", "ip", "status", "lastcontact")
    count = ctx.store.update([n.nodeid for n in nodes], {key if known else f"attrs.{key}": converted})
    _changed(ctx)
    ctx.info(f"'{count}' nodes set {key}='{value}'")
    return 0


def set_(ctx: CliContext, ns: argparse.Namespace) -> int:
    key, value, targets = parse_set_args(ctx, ns.args)
    nodes = _select(ctx, targets)
    if canonical_key(key) == "boot":
        return set_boot(ctx, value, nodes)
    if canonical_key(key) in BMC_KEYS:  # kept in <state>/bmc (0600), not in the database
        return set_bmc(ctx, canonical_key(key), value, nodes)
    return apply_set(ctx, key, value, nodes)


def set_boot(ctx: CliContext, value: str, nodes: list[Node]) -> int:
    """`node set boot default|perceus|local`: the node's PXE choice (an iPXE settings file per node, where
    Perceus 1.x wrote pxelinux.cfg/01-<mac>), also kept as the node attribute `boot`."""
    from perceus.master.netmgr.ipxe import BOOT_VALUES, write_boot_override

    if value not in BOOT_VALUES:
        raise UsageError("valid boot options are: 'perceus', 'local' or 'default'")
    if not ctx.confirm(
        f"Are you sure you wish to set 'boot={value}' on {len(nodes)} nodes?", output.confirm_rows(nodes)
    ):
        ctx.info("Nothing changed.")
        return 1
    ctx.store.update([n.nodeid for n in nodes], {"attrs.boot": "" if value == "default" else value})
    for node in nodes:
        write_boot_override(ctx.paths, node, value)
    _changed(ctx)
    ctx.info(f"'{len(nodes)}' nodes set boot='{value}'")
    return 0


def delete(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _select(ctx, ns.nodes)
    if not ctx.confirm(f"Are you sure you wish to delete {len(nodes)} nodes from Perceus?", output.confirm_rows(nodes)):
        ctx.info("Nothing deleted.")
        return 1
    count = ctx.store.delete([n.nodeid for n in nodes])
    _changed(ctx)
    ctx.info(f"'{count}' nodes have been deleted")
    return 0


def replace(ctx: CliContext, ns: argparse.Namespace) -> int:
    store = ctx.store
    old = store.get_by_hostname(ns.old)
    new = store.get_by_hostname(ns.new)
    if old is None:
        raise NotFoundError("node", ns.old)
    if new is None:
        raise NotFoundError("node", ns.new)
    if not ctx.confirm(
        f"Are you sure you wish to replace '{ns.old}' with '{ns.new}'?", output.confirm_rows([old, new])
    ):
        ctx.info("Nothing replaced.")
        return 1
    store.replace(ns.old, ns.new)
    _changed(ctx)
    ctx.info(f"Node '{ns.old}' has been replaced.")
    return 0


def pending(ctx: CliContext, ns: argparse.Namespace) -> int:
    rows = ctx.store.pending()
    if ctx.json:
        ctx.emit_json(pending_data(rows))
        return 0
    if not rows:
        ctx.info("No nodes are waiting for approval.")
        return 0
    ctx.info(f"{'NodeID':<20} {'IP Address':<16} {'Waiting':<10} Last seen")
    ctx.info(output.RULE)
    now = time.time()
    for p in rows:
        ctx.out(
            f"{p.nodeid:<20} {p.ip or '-':<16} {output.since(p.first_seen, now):<10} "
            f"{output.since(p.last_seen, now)} ago"
        )
    return 0


def approve(ctx: CliContext, ns: argparse.Namespace) -> int:
    waiting = ctx.store.pending()
    if ns.all:
        chosen = waiting
    else:
        if not ns.macs:
            raise UsageError("usage: node approve MAC... | --all")
        wanted = [hwaddr.normalize(m) for m in ns.macs]
        by_id = {p.nodeid: p for p in waiting}
        missing = [m for m in wanted if m not in by_id]
        if missing:
            raise NotFoundError("pending node", ",".join(missing))
        chosen = [by_id[m] for m in wanted]
    if not chosen:
        ctx.info("No nodes are waiting for approval.")
        return 0
    nodes = ctx.store.enroll(
        [EnrollRequest(nodeid=p.nodeid, macs=p.macs, nodename=p.nodename) for p in chosen], ctx.defaults
    )
    _changed(ctx)
    audit = AuditLog.for_paths(ctx.paths)
    for n in nodes:
        audit.record("approved", node=n.nodeid, hostname=n.hostname)
    ctx.info(f"Approved {len(nodes)} nodes: {fold(n.hostname for n in nodes)}")
    return 0


def revoke(ctx: CliContext, ns: argparse.Namespace) -> int:
    """Revocation is stored (node attribute `revoked`) so it survives restarts, then pushed to perceus-bus,
    which refuses the nodes' keys in ZAP and drops their requests mid-session (security/gate.py)."""
    nodes = _select(ctx, ns.nodes)
    value = "" if ns.undo else str(round(time.time()))
    ctx.store.update([n.nodeid for n in nodes], {"attrs.revoked": value})
    macs = [m for n in nodes for m in (n.macs or (n.nodeid,))]
    audit = AuditLog.for_paths(ctx.paths)
    for n in nodes:
        audit.record("unrevoked" if ns.undo else "revoked", node=n.nodeid, hostname=n.hostname)
    reply = ctx.notify("unrevoke" if ns.undo else "revoke", macs=macs)
    verb = "Lifted the revocation of" if ns.undo else "Revoked"
    ctx.info(f"{verb} {len(nodes)} nodes: {fold(n.hostname for n in nodes)}")
    if reply is None or not reply.get("ok"):
        ctx.warn("perceus-bus did not answer; it applies the change when it starts")
    return 0


def sync(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _select(ctx, ns.nodes)
    reply = ctx.notify("sync", nodes=[n.nodeid for n in nodes])
    if reply is None or not reply.get("ok"):
        ctx.warn("perceus-bus is not running; nodes will pick up changes at their next check-in")
        return 1
    ctx.info(f"Asked {len(nodes)} nodes to check in now: {fold(n.hostname for n in nodes)}")
    return 0


def timeline(ctx: CliContext, ns: argparse.Namespace) -> int:
    node = _select(ctx, [ns.node])[0]
    events = ctx.store.events(node.nodeid, ns.boot_id)
    if ctx.json:
        ctx.emit_json(timeline_data(events))
        return 0
    if not events:
        ctx.info(f"No boot events recorded for {node.hostname}.")
        return 0
    start = events[0].t
    ctx.info(f"{node.hostname} boot {events[0].boot_id}")
    for e in events:
        mark = "ok" if e.ok else "FAILED"
        ctx.out(
            f"  +{e.t - start:7.2f}s  {e.phase:<10} {'done' if e.done else 'start':<5} {mark}"
            f"{'  ' + e.detail if e.detail else ''}"
        )
    return 0
