"""`perceus import <format> FILE…` (nodes from other tools' files) and `perceus import perceus1` (1.x upgrade)."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.errors import PerceusError
from perceus.importers import registry
from perceus.importers.naming import DEFAULT_TEMPLATE, NameTemplate
from perceus.importers.plan import Plan, PlanOptions
from perceus.importers.records import ParseOptions, Problem
from perceus.master.cli import import_perceus1, import_store
from perceus.master.cli.context import CliContext
from perceus.master.store.models import ImportOutcome


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "import",
        help="add nodes from another tool's files (dhcpd.conf, xCAT, Warewulf, switch tables, logs …)",
        description="Import nodes. Strict by default: any error and nothing is stored.",
    )
    formats = parser.add_subparsers(dest="format", metavar="<format>", parser_class=type(parser))
    for fmt in registry.FORMATS.values():
        _file_arguments(formats.add_parser(fmt.name, help=fmt.summary, description=f"Import nodes: {fmt.summary}."))
    _file_arguments(formats.add_parser("auto", help="tell the format from the first file's content"))
    upgrade = formats.add_parser("perceus1", help="take over a Perceus 1.x master in place (see upgrade-from-1x.md)")
    import_perceus1.add_arguments(upgrade)
    upgrade.set_defaults(func=import_perceus1.run)


def _file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to read (gzip is fine)")
    parser.add_argument("--dry-run", action="store_true", help="parse and check against the store, store nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable output (as the global --json)")
    parser.add_argument("--skip-invalid", action="store_true", help="store the valid nodes, report the rest")
    parser.add_argument("--update", action="store_true", help="overwrite nodes that exist already")
    parser.add_argument("--group", help="group for every imported node (overrides the source)")
    parser.add_argument("--vnfs", help="VNFS for every imported node (overrides the source)")
    parser.add_argument("--name-template", default=DEFAULT_TEMPLATE, help="names for nameless sources (default n####)")
    parser.add_argument("--vlan", help="switch tables: only MACs learned in this VLAN (number or name)")
    parser.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    """Parse every file, check the records against each other and the store, then store them (or not)."""
    template = NameTemplate.parse(ns.name_template or DEFAULT_TEMPLATE)
    _, result = registry.parse(ns.format, list(ns.files), ParseOptions(vlan=ns.vlan))
    options = PlanOptions(group=ns.group, vnfs=ns.vnfs, template=template, update=ns.update)
    as_json = ctx.json or ns.json
    if ns.dry_run:
        plan = import_store.dry_run(ctx, result, options)
        _report(ctx, plan)
        _print(ctx, plan, None, as_json=as_json, dry_run=True)
        return 1 if plan.errors and not ns.skip_invalid else 0
    plan, outcome = import_store.apply(ctx, result, options, strict=not ns.skip_invalid)
    _report(ctx, plan)
    if plan.errors and not ns.skip_invalid:
        if as_json:  # the plan with its errors, for scripts; nothing was stored
            _print(ctx, plan, None, as_json=True, dry_run=False)
        raise PerceusError(
            f"{len(plan.errors)} error(s) in the input; nothing imported (--skip-invalid stores the valid nodes)"
        )
    _print(ctx, plan, outcome, as_json=as_json, dry_run=False)
    ctx.notify("nodes_changed")
    return 0


def _report(ctx: CliContext, plan: Plan) -> None:
    """Every problem on stderr, one line each: errors, then the records that are not nodes."""
    for kind, problems in (("", plan.errors), ("skipped: ", plan.skipped)):
        for problem in problems:
            _line(ctx, problem, kind)


def _line(ctx: CliContext, problem: Problem, kind: str) -> None:
    if kind and ctx.quiet:
        return
    print(f"perceus: import: {problem.where}: {kind}{problem.reason}", file=ctx.stderr)


def _print(ctx: CliContext, plan: Plan, outcome: ImportOutcome | None, *, as_json: bool, dry_run: bool) -> None:
    if as_json:
        doc: dict[str, object] = {
            "nodes": [n.as_json() for n in plan.nodes],
            "errors": [p.as_json() for p in plan.errors],
            "skipped": [p.as_json() for p in plan.skipped],
        }
        if outcome is not None:
            doc["outcome"] = {"added": outcome.added, "updated": outcome.updated, "unchanged": outcome.unchanged}
        ctx.emit_json(doc)
        return
    counts = f"{len(plan.errors)} error(s), {len(plan.skipped)} skipped"
    if dry_run:
        for node in plan.nodes:
            ip, group, vnfs = node.ip or "-", node.group or "-", node.vnfs or "-"
            ctx.out(f"{node.mac:<20} {node.hostname:<16} {ip:<15} {group:<12} {vnfs}")
        ctx.out(f"{len(plan.nodes)} node(s) would be imported, {counts}")
    elif outcome is not None:
        ctx.out(
            f"imported {len(plan.nodes)} node(s): {outcome.added} added, {outcome.updated} updated,"
            f" {outcome.unchanged} unchanged; {counts}"
        )
