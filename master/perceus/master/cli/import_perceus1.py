"""`perceus import perceus1 [OLD-CONFIG] [OLD-STATE]`: the in-place upgrade of a Perceus 1.x master."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.master.cli.context import CliContext
from perceus.master.config import DEFAULT_CONFIG_DIR, DEFAULT_STATE_DIR, MasterConfig
from perceus.master.perceus1 import migrate, safety
from perceus.master.store import NodeStore, open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `perceus import perceus1`."""
    parser.add_argument(
        "old_config",
        nargs="?",
        default=str(DEFAULT_CONFIG_DIR),
        help="the 1.x config dir (default /etc/perceus)",
    )
    parser.add_argument(
        "old_state",
        nargs="?",
        default=str(DEFAULT_STATE_DIR),
        help="the 1.x state dir (default /var/lib/perceus)",
    )
    parser.add_argument("--dry-run", action="store_true", help="read and report; write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out nodes that cannot be imported (duplicate hostnames: the first is kept)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run although TCP 987 is in use; replace already-edited new config files",
    )
    parser.add_argument("--mysql-dump", metavar="FILE", help="the 1.x MySQL database as a mysqldump file")
    parser.add_argument("--perceusd-port", type=int, default=safety.PERCEUSD_PORT, help=argparse.SUPPRESS)


def _existing_store(ctx: CliContext) -> NodeStore | None:
    """The new store if it exists already (a dry run must not create one)."""
    config = MasterConfig.load(ctx.paths)
    if config.database == "sqlite" and not ctx.paths.database.exists():
        return None
    return open_store(ctx.paths, config)


def _summary(ctx: CliContext, data: dict[str, Any], *, dry_run: bool) -> None:
    nodes = data["nodes"]
    ctx.out(
        f"Perceus 1.x master: {data['old_config']}, {data['old_state']}"
        f" ({data['backend']} database, {len(data['fields'])} attribute tables)"
    )
    extra = sorted({k for n in nodes for k in n["attrs"]})
    ctx.out(
        f"Nodes:    {len(nodes)} to import, {len(data['errors'])} invalid"
        + (f"; extra attributes: {', '.join(extra)}" if extra else "")
    )
    ctx.out(f"Groups:   {', '.join(data['groups']) or '-'}")
    ctx.out("Modules:  " + ("; ".join(f"{m} ({', '.join(r)})" for m, r in data["modules"].items()) or "-"))
    admin = [a for a in data["activations"] if a["kind"] == "admin"]
    ctx.out(f"Scripts:  {len(data['activations'])} nodescripts entries, {len(admin)} admin scripts kept")
    for cap in data["capsules"]:
        ctx.out(f"Capsule:  {cap['name']} ({cap['type']}, {cap['root'] or 'no root'}): {cap['status']}")
    obsolete = [s for s in data["settings"] if s["status"] == "obsolete"]
    for s in obsolete:
        ctx.out(f"Setting:  '{s['key']} = {s['value']}' no longer applies: {s['note']}")
    for f in data["files"]:
        ctx.out(f"Config:   {f['file']}: {f['action']}" + (f" ({f['note']})" if f["note"] else ""))
    for w in data["warnings"]:
        ctx.out(f"Warning:  {w}")
    for e in data["errors"]:
        ctx.out(f"Error:    {e}")
    out = data["outcome"]
    if out is not None:
        ctx.out(
            f"Imported: {out['added']} added, {out['updated']} updated, {out['unchanged']} unchanged;"
            f" {out['tree_entries_created']} files/links carried over"
        )
    elif dry_run:
        ctx.out("Dry run: nothing was written.")


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    """Plan, check, apply, report."""
    old_config, old_state = ns.old_config, ns.old_state
    opts = migrate.Options(
        old_config=Path(old_config).absolute(),
        old_state=Path(old_state).absolute(),
        paths=ctx.paths,
        skip_invalid=ns.skip_invalid,
        force=getattr(ns, "force", False),
        mysql_dump=Path(ns.mysql_dump) if getattr(ns, "mysql_dump", None) else None,
        perceusd_port=getattr(ns, "perceusd_port", safety.PERCEUSD_PORT),
    )
    as_json = ctx.json or getattr(ns, "json", False)
    if ns.dry_run:
        store = _existing_store(ctx)
        try:
            m = migrate.plan(opts, store)
        finally:
            if store is not None:
                store.close()
        data = migrate.report(m, None)
        ctx.emit_json(data) if as_json else _summary(ctx, data, dry_run=True)
        return 1 if m.errors and not opts.skip_invalid else 0
    ctx.paths.ensure()
    m = migrate.plan(opts, ctx.store)
    migrate.check(m)
    outcome = migrate.apply(m, ctx.store)
    data = migrate.report(m, outcome)
    migrate.write_report(ctx.paths, data)
    ctx.emit_json(data) if as_json else _summary(ctx, data, dry_run=False)
    ctx.notify("nodes_changed")
    return 0
