"""`perceus group …` (1.x ref §4.5): exact group names, no globs — as Perceus 1.x."""

from __future__ import annotations

import argparse
import time
from itertools import chain
from typing import Any

from perceus.errors import NotFoundError, UsageError
from perceus.master.cli import output
from perceus.master.cli.context import CliContext
from perceus.master.cli.node import apply_set, parse_set_args, render, summary_data
from perceus.master.cli.power import BMC_KEYS, set_group_bmc
from perceus.master.nodeattrs import canonical_key, parse_value
from perceus.master.store.models import Node


def register(sub: Any) -> None:
    p = sub.add_parser("group", help="act on all nodes of groups")
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))
    v = verbs.add_parser("list", help="group names")
    v.set_defaults(func=list_)
    v = verbs.add_parser("nodelist", help="nodes by group")
    v.set_defaults(func=nodelist)
    for name, func in (("status", status), ("summary", summary), ("show", show)):
        v = verbs.add_parser(name, help=f"node {name} for members of groups")
        v.add_argument("groups", nargs="+")
        v.set_defaults(func=func)
    v = verbs.add_parser("set", help="set KEY VALUE GROUP… on every member (`set group NEW OLD` renames)")
    v.add_argument("args", nargs="+", metavar="KEY VALUE GROUP")
    v.set_defaults(func=set_)
    v = verbs.add_parser("delete", help="delete every member node of groups")
    v.add_argument("groups", nargs="+")
    v.set_defaults(func=delete)


def _members(ctx: CliContext, groups: list[str]) -> list[Node]:
    known = set(ctx.store.groups())
    missing = [g for g in groups if g not in known]
    if missing:
        raise NotFoundError("group", ",".join(missing))
    wanted = set(groups)
    return [n for n in ctx.store.list_nodes() if n.group in wanted]


def list_(ctx: CliContext, ns: argparse.Namespace) -> int:
    groups = ctx.store.groups()
    if ctx.json:
        ctx.emit_json(groups)
        return 0 if groups else 1
    if not groups:
        ctx.warn("No groups found")
        return 1
    for g in groups:
        ctx.out(g)
    return 0


def nodelist(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = sorted(ctx.store.list_nodes(), key=lambda n: (n.group, n.hostname))
    if ctx.json:
        grouped: dict[str, list[str]] = {}
        for n in nodes:
            grouped.setdefault(n.group, []).append(n.hostname)
        ctx.emit_json(grouped)
        return 0
    current = None
    for n in nodes:
        if n.group != current:
            current = n.group
            ctx.out(f"{current or '(undefined)'}:")
        ctx.out(f"   {n.hostname}")
    return 0


# Members of a known group are never empty, so `render`'s no-node branch does not apply here; the JSON of
# `group status/show` is the full node records (as before), `group summary` the summary rows.


def status(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _members(ctx, ns.groups)
    timeout, now = ctx.config.node_timeout, time.time()
    return render(
        ctx,
        nodes,
        data=lambda: [n.as_dict() for n in nodes],
        header=(output.STATUS_HEADER, output.RULE),
        rows=lambda: output.status_rows(nodes, timeout, now),
    )


def summary(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _members(ctx, ns.groups)
    return render(
        ctx,
        nodes,
        data=lambda: summary_data(nodes),
        header=(output.SUMMARY_HEADER, output.RULE),
        rows=lambda: output.summary_rows(nodes),
    )


def show(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _members(ctx, ns.groups)
    return render(
        ctx,
        nodes,
        data=lambda: [n.as_dict() for n in nodes],
        rows=lambda: chain.from_iterable(map(output.show_lines, nodes)),
    )


def set_(ctx: CliContext, ns: argparse.Namespace) -> int:
    key, value, groups = parse_set_args(ctx, ns.args)
    if canonical_key(key) == "group" and len(groups) == 1 and value not in ctx.store.groups():
        # `group set group NEW OLD`: a rename, as in Perceus 1.x.
        new = parse_value("group", value)
        if not new:
            raise UsageError("a group cannot be renamed to an empty name")
        members = _members(ctx, groups)
        if not ctx.confirm(
            f"Are you sure you wish to rename group '{groups[0]}' to '{new}' ({len(members)} nodes)?",
            output.confirm_rows(members),
        ):
            return 1
        count = ctx.store.rename_group(groups[0], new)
        ctx.notify("nodes_changed")
        ctx.info(f"'{count}' nodes set group='{new}'")
        return 0
    if canonical_key(key) in BMC_KEYS:  # group BMC defaults, kept in <state>/bmc (issue 19)
        _members(ctx, groups)
        return set_group_bmc(ctx, canonical_key(key), value, groups)
    return apply_set(ctx, key, value, _members(ctx, groups))


def delete(ctx: CliContext, ns: argparse.Namespace) -> int:
    nodes = _members(ctx, ns.groups)
    if not ctx.confirm(f"Are you sure you wish to delete {len(nodes)} nodes from Perceus?", output.confirm_rows(nodes)):
        return 1
    count = ctx.store.delete([n.nodeid for n in nodes])
    ctx.notify("nodes_changed")
    ctx.info(f"'{count}' nodes have been deleted")
    return 0
