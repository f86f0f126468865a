"""`perceus node power ACTION NODES…`, `perceus node bmc NODES…` and the BMC keys of `node set` / `group set`
(issue 19): BMC records live in `<state>/bmc/bmc.json` (0600), never in the database, passwords never printed."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from perceus.errors import NotFoundError, UsageError
from perceus.master.cli import output
from perceus.master.cli.context import CliContext
from perceus.master.cli.nodespec import expand, fold, select
from perceus.master.power.consolelog import ConsoleLog, console_path
from perceus.master.power.records import parse_url
from perceus.master.power.runner import ACTIONS, Job, Outcome, run
from perceus.master.power.store import BmcStore, read_password
from perceus.master.security.audit import AuditLog
from perceus.master.store.models import Node

# `node set` / `group set` keys handled here instead of as node attributes.
BMC_KEYS = ("bmc", "bmc-password", "bmc-user")
CHANGING = ("on", "off", "cycle", "reset", "soft")
_RANGE = re.compile(r"\[[^\]]+\]")


def register_power(verbs: Any) -> None:
    v = verbs.add_parser("power", help="power on|off|cycle|reset|soft|status through the nodes' BMCs")
    v.add_argument("action", choices=ACTIONS)
    v.add_argument("nodes", nargs="+", help="names, globs (n00*) or ranges (n[0001-0128])")
    v.add_argument("--timeout", type=float, default=10.0, help="seconds per node, retries included (default 10)")
    v.add_argument("--retries", type=int, default=1, help="extra attempts after a network error (default 1)")
    v.add_argument("--parallel", type=int, default=64, help="BMCs talked to at once (default 64)")
    v.set_defaults(func=power)

    v = verbs.add_parser("bmc", help="BMC address, protocol and user of nodes (never the password)")
    v.add_argument("nodes", nargs="*", default=["*"])
    v.set_defaults(func=show_bmc)


# ---------------------------------------------------------------------------------------------- power


def power(ctx: CliContext, ns: argparse.Namespace) -> int:
    if ns.timeout <= 0 or ns.retries < 0 or ns.parallel < 1:
        raise UsageError("--timeout must be > 0, --retries >= 0, --parallel >= 1")
    nodes, missing = select(ctx.store.list_nodes(), ns.nodes, by_nodeid=ctx.by_nodeid)
    if not nodes and not missing:
        raise NotFoundError("node", " ".join(ns.nodes))
    if (
        nodes
        and ns.action in CHANGING
        and not ctx.confirm(
            f"Are you sure you wish to power {ns.action} {len(nodes)} nodes?", output.confirm_rows(nodes)
        )
    ):
        ctx.info("Nothing done.")
        return 1
    bmcs = BmcStore.for_paths(ctx.paths)
    jobs = []
    for node in nodes:
        resolved = bmcs.resolve(node)
        jobs.append(Job(node.hostname, problem=resolved) if isinstance(resolved, str) else Job(node.hostname, resolved))
    jobs += [Job(name, problem="unknown node") for name in missing if name != "*"]
    outcomes = run(jobs, ns.action, timeout=ns.timeout, retries=ns.retries, parallel=ns.parallel)
    if ns.action in CHANGING:
        audit = AuditLog.for_paths(ctx.paths)
        ids = {n.hostname: n.nodeid for n in nodes}
        for o in outcomes:
            audit.record(
                f"power_{ns.action}",
                node=ids.get(o.node, ""),
                hostname=o.node,
                bmc=o.bmc,
                ok=o.ok,
                state=o.state,
                error=o.error,
            )
    if ns.action in CHANGING:
        for o in outcomes:
            if o.ok:  # where `perceus node log` starts the node's next boot
                ConsoleLog(console_path(ctx.paths, o.node)).note(f"power {ns.action} ({o.state}) via {o.bmc}")
    failed = [o for o in outcomes if not o.ok]
    if ctx.json:
        ctx.emit_json([o.as_dict() for o in outcomes])
    else:
        ctx.info(f"{'HostName':<20} {'Result':<20} {'Time':>7}  BMC / error")
        ctx.info(output.RULE)
        for o in outcomes:
            ctx.out(result_row(o))
        ctx.info(f"{ns.action}: {len(outcomes) - len(failed)} ok, {len(failed)} failed")
    return 1 if failed else 0


def result_row(o: Outcome) -> str:
    result = o.state if o.ok else "FAILED"
    tail = o.bmc if o.ok else f"{o.bmc + ': ' if o.bmc else ''}{o.error}"
    return f"{o.node:<20.20} {result:<20.20} {o.seconds:6.2f}s  {tail}"


def show_bmc(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes, missing = select(ctx.store.list_nodes(), ns.nodes, by_nodeid=ctx.by_nodeid)
    for name in missing:
        if name != "*":
            ctx.warn(f"node '{name}' does not exist")
    bmcs = BmcStore.for_paths(ctx.paths)
    rows = [{"hostname": n.hostname, **bmcs.public(n)} for n in nodes]
    if ctx.json:
        ctx.emit_json(rows)
        return 0 if rows else 1
    if not rows:
        ctx.warn("No nodes found")
        return 1
    ctx.info(f"{'HostName':<20} {'Password':<9} BMC")
    ctx.info(output.RULE)
    for r in rows:
        ctx.out(f"{r['hostname']!s:<20.20} {r['password']!s:<9} {r['url'] or r['problem']}")
    return 0


# ---------------------------------------------------------------------------------------------- set


def set_bmc(ctx: CliContext, key: str, value: str, nodes: Sequence[Node]) -> int:
    """`node set bmc URL NODES` (a `[a-b]` range in the host is paired with the nodes in order; `none` clears),
    `node set bmc-password -|@FILE NODES`, `node set bmc-user NAME NODES`."""
    if key == "bmc" and value.lower() == "reported":
        return _adopt_reported(ctx, nodes)
    fields = _fields(ctx, key, value)
    per_node: list[dict[str, object]] = [fields] * len(nodes)
    if key == "bmc" and value.lower() != "none" and _RANGE.search(str(fields.get("host", ""))):
        hosts = expand(str(fields["host"]))
        if len(hosts) != len(nodes):
            raise UsageError(f"the BMC range names {len(hosts)} hosts for {len(nodes)} nodes")
        per_node = [{**fields, "host": h} for h in hosts]
    shown = "(password)" if key == "bmc-password" else value
    question = f"Are you sure you wish to set '{key}={shown}' on {len(nodes)} nodes?"
    if not ctx.confirm(question, output.confirm_rows(nodes)):
        ctx.info("Nothing changed.")
        return 1
    with BmcStore.for_paths(ctx.paths).editing() as bmcs:
        for node, f in zip(nodes, per_node, strict=True):
            bmcs.update("nodes", node.nodeid, f)
    audit = AuditLog.for_paths(ctx.paths)
    for node in nodes:
        audit.record("bmc_set", node=node.nodeid, hostname=node.hostname, key=key)
    ctx.info(f"'{len(nodes)}' nodes set {key}='{shown}': {fold(n.hostname for n in nodes)}")
    return 0


def _adopt_reported(ctx: CliContext, nodes: Sequence[Node]) -> int:
    """`node set bmc reported NODES`: each node's BMC host becomes the address it reported of its own BMC
    (IPMI; user, port and password stay as set).  The report is node-supplied, so this is only ever the
    admin's explicit, confirmed act (docs/power.md)."""
    inventories = ctx.store.inventories([n.nodeid for n in nodes]) if nodes else {}
    addresses: dict[str, str] = {}
    for n in nodes:
        bmc = inventories[n.nodeid].reported_bmc if n.nodeid in inventories else None
        if bmc is not None:
            addresses[n.nodeid] = bmc.address
    without = [n.hostname for n in nodes if n.nodeid not in addresses]
    if without:
        raise UsageError(f"no BMC address reported by {fold(without)}")
    rows = [f"{n.hostname:<20} ipmi://{addresses[n.nodeid]} (node-reported)" for n in nodes]
    if not ctx.confirm(f"Set {len(nodes)} nodes' BMC to the address each reported?", rows):
        ctx.info("Nothing changed.")
        return 1
    with BmcStore.for_paths(ctx.paths).editing() as bmcs:
        for n in nodes:
            fields = {"protocol": "ipmi", "scheme": "", "host": addresses[n.nodeid], "path": ""}
            bmcs.update("nodes", n.nodeid, fields)
    audit = AuditLog.for_paths(ctx.paths)
    for n in nodes:
        audit.record("bmc_set", node=n.nodeid, hostname=n.hostname, key="bmc", source="reported")
    ctx.info(f"'{len(nodes)}' nodes set bmc to their reported addresses: {fold(n.hostname for n in nodes)}")
    return 0


def set_group_bmc(ctx: CliContext, key: str, value: str, groups: Sequence[str]) -> int:
    """`group set bmc|bmc-password|bmc-user VALUE GROUP…`: the default of every node of the group (now and
    later) for whatever its own entry leaves out; `{hostname}` in the host stands for each node's name."""
    fields = _fields(ctx, key, value)
    if _RANGE.search(str(fields.get("host", ""))):
        raise UsageError("a group's BMC cannot be a range; use {hostname} in the host, or `node set bmc`")
    with BmcStore.for_paths(ctx.paths).editing() as bmcs:
        for g in groups:
            bmcs.update("groups", g, fields)
    AuditLog.for_paths(ctx.paths).record("bmc_set", groups=list(groups), key=key)
    shown = "(password)" if key == "bmc-password" else value
    ctx.info(f"group {', '.join(groups)}: BMC default {key}='{shown}'")
    return 0


def _fields(ctx: CliContext, key: str, value: str) -> dict[str, object]:
    if key == "bmc":
        if value.lower() in ("none", ""):
            return dict.fromkeys(("protocol", "scheme", "host", "port", "user", "path"), "")
        return parse_url(value)
    if key == "bmc-password":
        return {"password": read_password(value, ctx.stdin.readline)}
    if key == "bmc-user":
        return {"user": value}
    raise UsageError(f"unknown BMC key {key!r}")
