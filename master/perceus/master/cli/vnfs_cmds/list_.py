"""`perceus vnfs list [GLOB…]`: name, type, version, kernel, sizes and the nodes using each capsule."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Iterable
from typing import Any

from perceus.master.capsule.manage import Info, infos
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import mib
from perceus.master.store.models import Node

HEADER = f"{'NAME':<24} {'TYPE':<9} {'VER':>4} {'KERNEL':<24} {'SIZE':>11} {'PACKED':>11} {'NODES':>5}"


def add(verbs: Any) -> None:
    p = verbs.add_parser("list", help="list capsules (shell globs select)")
    p.add_argument("globs", nargs="*")
    p.add_argument("--json", action="store_true", dest="as_json", help="JSON output")
    p.set_defaults(func=run)


def capsule_users(nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Capsule name → hostnames of the nodes set to it."""
    users: dict[str, list[str]] = {}
    for node in nodes:
        if node.vnfs:
            users.setdefault(node.vnfs, []).append(node.hostname)
    return users


def list_data(rows: Iterable[Info], users: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`vnfs list --json` (and the web API's /api/v1/capsules)."""
    return [{**i.as_dict(), "nodes": users.get(i.name, [])} for i in rows]


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    rows = [i for i in infos(ctx.paths) if not ns.globs or any(fnmatch.fnmatchcase(i.name, g) for g in ns.globs)]
    users = capsule_users(ctx.store.list_nodes())
    if ctx.json or ns.as_json:
        ctx.emit_json(list_data(rows, users))
        return 0
    if not rows:
        ctx.warn("no VNFS capsules" + (" match " + " ".join(ns.globs) if ns.globs else " imported yet"))
        return 1
    ctx.info(HEADER)
    for i in rows:
        name = f"{i.name} (mounted)" if i.mounted else i.name
        ctx.out(
            f"{name:<24} {i.type:<9} {i.version:>4} {i.kernel:<24.24} {mib(i.raw_size):>11} "
            f"{mib(i.packed_size):>11} {len(users.get(i.name, [])):>5}"
        )
    return 0
