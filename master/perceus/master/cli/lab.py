"""`perceus lab fleet`: an emulated fleet — N real stage-one agents in network namespaces, a real master (root)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from perceus.errors import PerceusError, UsageError
from perceus.master.cli.context import CliContext


def register(sub: Any) -> None:
    p = sub.add_parser("lab", help="lab harnesses on this machine (root): the emulated fleet")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    f = verbs.add_parser("fleet", help="boot N emulated nodes (real agents, own namespaces, shaped links)")
    f.add_argument("--nodes", type=int, default=24, help="how many emulated nodes (default 24, at most 1000)")
    f.add_argument("--capsule-mb", type=float, default=8.0, help="size of the generated capsule in MiB (default 8)")
    f.add_argument("--uplink", default="200mbit", help="the master's link rate, both directions (default 200mbit)")
    f.add_argument("--node-rate", default="20mbit", help="each node's link rate, both directions (default 20mbit)")
    f.add_argument("--loss", type=float, default=0.0, help="packet loss on node links in percent (iptables)")
    f.add_argument("--no-pacing", action="store_true", help="let every node pull its capsule at once (unpaced)")
    f.add_argument("--star", action="store_true", help="every capsule from the master (`capsule swarm = no`)")
    f.add_argument("--timeout", type=float, default=900.0, help="seconds until every node must be ready")
    f.add_argument("--workdir", help="keep config, state and node consoles here (default: a temp dir, removed)")
    f.add_argument("--timeline", action="store_true", help="print the per-node timeline even for large fleets")
    f.set_defaults(func=fleet)


def fleet(ctx: CliContext, ns: argparse.Namespace) -> int:
    from perceus.lab.fleet import FleetOptions, run_fleet
    from perceus.lab.fleet_view import summary, timeline_table
    from perceus.lab.shaping import parse_rate

    if not 1 <= ns.nodes <= 1000:
        raise UsageError("--nodes must be between 1 and 1000 (one bridge holds at most 1023 ports)")
    if not 0.0 <= ns.loss < 100.0:
        raise UsageError("--loss is a percentage below 100")
    if ns.capsule_mb <= 0:
        raise UsageError("--capsule-mb must be positive")
    if os.geteuid() != 0:
        raise PerceusError("perceus lab fleet needs root (network namespaces, tc, iptables)")
    options = FleetOptions(nodes=ns.nodes, capsule_mb=ns.capsule_mb, uplink=parse_rate(ns.uplink),
                           node_rate=parse_rate(ns.node_rate), loss=ns.loss / 100.0, pacing=not ns.no_pacing,
                           timeout=ns.timeout, master_conf="capsule swarm = no\n" if ns.star else "")  # fmt: skip
    workdir = Path(ns.workdir) if ns.workdir else Path(tempfile.mkdtemp(prefix="perceus-fleet-"))
    progress = ctx.stderr if ctx.json else ctx.stdout
    try:
        result = run_fleet(workdir / "run", options, out=progress)
    except PerceusError:
        progress.write(f"fleet: logs kept in {workdir}\n")
        raise
    if ctx.json:
        ctx.emit_json(result.as_dict())
    else:
        if ns.timeline or ns.nodes <= 64:
            ctx.out(timeline_table(result))
        ctx.out(summary(result))
    if ns.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        ctx.out(f"fleet: config, state and node consoles in {workdir}")
    return 0 if result.failures == 0 else 1
