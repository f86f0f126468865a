"""`perceus info [about|config KEY|system]`: version, paths, configuration, node counts by state."""

from __future__ import annotations

import argparse
import platform
import sqlite3
import sys
import time
from typing import Any

import zmq

from perceus.agent import __version__
from perceus.errors import ConfigError
from perceus.master.cli import info_config, output
from perceus.master.cli.context import CliContext
from perceus.master.multimaster.info import masters_lines, masters_section
from perceus.master.netinfo import interface_ipv4
from perceus.master.netmgr import nfs_status


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="version, paths, configuration and node counts")
    p.set_defaults(func=summary)
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))
    verbs.add_parser("about", help="what Perceus is").set_defaults(func=about)
    v = verbs.add_parser("config", help="print one perceus.conf value (or all)")
    v.add_argument("key", nargs="*")
    v.set_defaults(func=config)
    verbs.add_parser("system", help="versions and the master's system").set_defaults(func=system)


def _status(ctx: CliContext) -> dict[str, Any]:
    store = ctx.store
    nodes = store.list_nodes()
    now = time.time()
    timeout = ctx.config.node_timeout
    bus = ctx.notify("ping")
    return {
        "version": __version__,
        "config_dir": str(ctx.paths.config_dir),
        "state_dir": str(ctx.paths.state_dir),
        "database": ctx.config.database if ctx.config.database != "sqlite" else str(ctx.paths.database),
        "schema_version": store.schema_version(),
        "enrollment_policy": ctx.config.enrollment_policy,
        "bus": {
            "running": bool(bus and bus.get("ok")),
            **({k: bus[k] for k in ("pid", "endpoint", "events")} if bus and bus.get("ok") else {}),
        },
        # The NFS server of hybrid capsules (netmgr/nfs.py), as the running bus reports it.
        "nfs": nfs_status.query(ctx.paths.control_socket) if bus and bus.get("ok") else None,
        "nodes": {
            "total": len(nodes),
            "by_status": store.count_by_status(),
            "stale": sum(1 for n in nodes if output.is_stale(n, timeout, now)),
            "disabled": sum(1 for n in nodes if not n.enabled),
            "pending_approval": len(store.pending()),
        },
        "groups": store.groups(),
        # Every master sharing a PostgreSQL store: heartbeat age, liveness, requests served (issue 9).
        "masters": masters_section(store, shared=ctx.config.database != "sqlite"),
    }


def summary(ctx: CliContext, ns: argparse.Namespace) -> int:
    data = _status(ctx)
    if ctx.json:
        ctx.emit_json(data)
        return 0
    ctx.out(f"Perceus {data['version']}")
    ctx.out(f"  config dir:        {data['config_dir']}")
    ctx.out(f"  state dir:         {data['state_dir']}")
    ctx.out(f"  database:          {data['database']} (schema {data['schema_version']})")
    ctx.out(f"  enrollment policy: {data['enrollment_policy']}")
    bus = data["bus"]
    running = f"running, pid {bus['pid']} on {bus['endpoint']}" if bus["running"] else "not running"
    ctx.out(f"  perceus-bus:       {running}")
    if bus["running"]:
        ctx.out(f"  nfs (hybrid):      {nfs_status.describe(data['nfs'])}")
    n = data["nodes"]
    ctx.out(
        f"  nodes:             {n['total']} ({n['disabled']} disabled, {n['stale']} stale, "
        f"{n['pending_approval']} pending approval)"
    )
    for status, count in sorted(n["by_status"].items()):
        ctx.out(f"    {status or '(never seen)':<17}{count}")
    ctx.out(f"  groups:            {', '.join(data['groups']) or '(none)'}")
    if data["masters"]["shared"]:
        for line in masters_lines(data["masters"]):
            ctx.out(line)
    return 0


# What `perceus` alone and `perceus info about` print.
ABOUT = f"""\
Perceus {__version__} — cluster provisioning (a modern rebuild of Perceus 1.x).

Nodes PXE-boot a small stage-one Linux whose agent enrolls with this master over an
authenticated ZeroMQ bus, receives its VNFS capsule as verified chunks and kexecs into it.
Type 'perceus --help' for the commands, 'perceus contact' for where to get help."""


def about(ctx: CliContext, ns: argparse.Namespace) -> int:
    ctx.out(ABOUT)
    return 0


def config(ctx: CliContext, ns: argparse.Namespace) -> int:
    """One key's effective value (set or default), or every documented key with `info config` alone."""
    key = " ".join(ns.key)
    if not key:
        data = info_config.every(ctx)
        if ctx.json:
            ctx.emit_json(data)
        else:
            for k, v in data.items():
                ctx.out(f"{k} = {v}")
        return 0
    value = info_config.value(ctx, key)
    if value is None:
        # Perceus 1.x printed a warning and exited 0 (1.x ref §13); an unknown key is an error here.
        raise ConfigError(f"no such configuration key {key!r}", path=str(ctx.paths.perceus_conf))
    if ctx.json:
        ctx.emit_json({key: value})
    else:
        ctx.out(value)
    return 0


def system(ctx: CliContext, ns: argparse.Namespace) -> int:
    data = {
        "perceus": __version__,
        "python": sys.version.split()[0],
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "machine": platform.machine(),
        "master_device": ctx.config.master_device,
        "master_ip": interface_ipv4(ctx.config.master_device),
    }
    if ctx.json:
        ctx.emit_json(data)
    else:
        for k, v in data.items():
            ctx.out(f"{k:<14} {v}")
    return 0
