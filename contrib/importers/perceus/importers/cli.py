"""`perceus import <format> FILE...`: parse everything, check it, then store it in one transaction."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TextIO

from perceus.errors import PerceusError
from perceus.importers import registry
from perceus.importers.naming import NameTemplate
from perceus.importers.plan import Plan, PlanOptions, build
from perceus.importers.records import ParseOptions, Problem
from perceus.master.store.models import NewNode

DEFAULT_TEMPLATE = "n####"  # Perceus 1.x defaults.conf "Node Name"


def add_parser(subparsers: Any) -> None:
    """Add the `import` noun to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "import",
        help="add nodes from another tool's files (dhcpd.conf, xCAT, Warewulf, switch tables, logs …)",
        description="Import nodes. Strict by default: any error and nothing is stored.",
    )
    parser.add_argument("format", choices=[*registry.FORMATS, "auto"], help="source format, or auto")
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to read (gzip is fine)")
    parser.add_argument("--dry-run", action="store_true", help="parse and check, store nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--skip-invalid", action="store_true", help="store the valid nodes, report the rest")
    parser.add_argument("--update", action="store_true", help="overwrite nodes that exist already")
    parser.add_argument("--group", help="group for every imported node (overrides the source)")
    parser.add_argument("--vnfs", help="VNFS for every imported node (overrides the source)")
    parser.add_argument("--name-template", default=DEFAULT_TEMPLATE, help="names for nameless sources (default n####)")
    parser.add_argument("--vlan", help="switch tables: only MACs learned in this VLAN")


def _report(problems: list[Problem], kind: str, stream: TextIO) -> None:
    for problem in problems:
        print(f"perceus: import: {problem.where}: {kind}{problem.reason}", file=stream)


def _print_plan(plan: Plan, ns: argparse.Namespace, outcome: dict[str, int] | None) -> None:
    if ns.json:
        doc: dict[str, object] = {
            "nodes": [n.as_json() for n in plan.nodes],
            "errors": [p.as_json() for p in plan.errors],
            "skipped": [p.as_json() for p in plan.skipped],
        }
        if outcome is not None:
            doc["outcome"] = outcome
        print(json.dumps(doc, indent=2))
        return
    if ns.dry_run:
        for node in plan.nodes:
            ip, group, vnfs = node.ip or "-", node.group or "-", node.vnfs or "-"
            print(f"{node.mac:<20} {node.hostname:<16} {ip:<15} {group:<12} {vnfs}")
        print(f"{len(plan.nodes)} node(s) would be imported, {len(plan.errors)} error(s), {len(plan.skipped)} skipped")
    elif outcome is not None:
        print(
            f"imported {len(plan.nodes)} node(s): {outcome['added']} added, {outcome['updated']} updated,"
            f" {outcome['unchanged']} unchanged; {len(plan.errors)} error(s), {len(plan.skipped)} skipped"
        )


def run(ns: argparse.Namespace, open_store: Callable[[], AbstractContextManager[Any]]) -> int:
    """Parse all files, then (unless --dry-run) store the nodes in one transaction; returns the exit code."""
    template = NameTemplate.parse(ns.name_template or DEFAULT_TEMPLATE)
    _, result = registry.parse(ns.format, list(ns.files), ParseOptions(vlan=ns.vlan))
    options = PlanOptions(group=ns.group, vnfs=ns.vnfs, template=template)
    if ns.dry_run:
        plan = build(result, options)
        _report(plan.errors, "", sys.stderr)
        _report(plan.skipped, "skipped: ", sys.stderr)
        _print_plan(plan, ns, None)
        return 1 if plan.errors and not ns.skip_invalid else 0
    with open_store() as store:
        existing = store.list_nodes()
        known = {mac: node.hostname for node in existing for mac in (node.nodeid, *node.macs)}
        options = PlanOptions(
            group=ns.group,
            vnfs=ns.vnfs,
            template=template,
            used_names=frozenset(node.hostname for node in existing),
            known_names=known if ns.update else {},
        )
        plan = build(result, options)
        _report(plan.errors, "", sys.stderr)
        _report(plan.skipped, "skipped: ", sys.stderr)
        if plan.errors and not ns.skip_invalid:
            raise PerceusError(
                f"{len(plan.errors)} error(s) in the input; nothing imported (--skip-invalid stores the valid nodes)"
            )
        outcome = store.import_nodes(_new_nodes(plan), update=ns.update)
    _print_plan(plan, ns, {"added": outcome.added, "updated": outcome.updated, "unchanged": outcome.unchanged})
    return 0


def _new_nodes(plan: Plan) -> list[NewNode]:
    """The store's NewNode values (this module is the only one that knows the store)."""
    return [NewNode(nodeid=n.mac, hostname=n.hostname, group=n.group, vnfs=n.vnfs, ip=n.ip) for n in plan.nodes]
