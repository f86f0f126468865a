"""`perceus configure database [--from-sqlite PATH [--force]]`: initialise the configured node store, or move
an SQLite store into PostgreSQL for multi-master (docs/multi-master.md).

Perceus 1.x's `configure database` only created missing per-attribute tables (1.x ref §11.2); this one also
migrates the schema and copies an existing store across without losing a node.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.errors import UsageError
from perceus.master.cli.context import CliContext


def register_database(verbs: Any) -> None:
    v = verbs.add_parser(
        "database",
        help="initialise the node database perceus.conf names; --from-sqlite copies a store into PostgreSQL",
    )
    v.add_argument(
        "--from-sqlite",
        metavar="PATH",
        help="copy every node, MAC, attribute, event and pending node from this SQLite store",
    )
    v.add_argument("--force", action="store_true", help="replace what the PostgreSQL database already holds")
    v.set_defaults(func=database)


def _backend(ctx: CliContext) -> str:
    database = ctx.config.database
    if database == "sqlite":
        return f"sqlite {ctx.paths.database}"
    from perceus.master.store.pglisten import redact

    return f"postgresql {redact(database)}"


def database(ctx: CliContext, ns: argparse.Namespace) -> int:
    if ns.force and not ns.from_sqlite:
        raise UsageError("perceus configure database: --force only applies to --from-sqlite")
    if not ns.from_sqlite:
        store = ctx.store  # opening it creates and migrates the schema
        nodes = sum(store.count_by_status().values())
        if ctx.json:
            ctx.emit_json({"backend": _backend(ctx), "schema": store.schema_version(), "nodes": nodes})
        else:
            ctx.info(f"Database ready: {_backend(ctx)}, schema {store.schema_version()}, {nodes} nodes")
        return 0
    if ctx.config.database == "sqlite":
        raise UsageError(
            "perceus configure database --from-sqlite: perceus.conf uses SQLite; set"
            " 'database type = postgresql://USER@HOST/DB' first"
        )
    source = Path(ns.from_sqlite)
    from perceus.master.store.pgcopy import copy_sqlite
    from perceus.master.store.postgres import PostgresStore

    store = ctx.store
    assert isinstance(store, PostgresStore)
    if ns.force and not ctx.confirm(f"Replace everything in {_backend(ctx)} with {source}?"):
        return 1
    copied = copy_sqlite(source, store, force=ns.force)
    if ctx.json:
        ctx.emit_json({"backend": _backend(ctx), "source": str(source), "copied": copied})
    else:
        ctx.info(
            f"Copied {copied['node']} nodes ({copied['node_mac']} MACs, {copied['node_attr']} attributes),"
            f" {copied['event']} events and {copied['pending']} pending nodes from {source} into {_backend(ctx)}"
        )
    ctx.notify("nodes_changed")
    return 0
