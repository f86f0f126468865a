"""`perceus vnfs status NAME`: how the capsule's bytes reached the nodes — from the master or from peers, per rack.

Read from what perceus-bus's swarm last wrote (`<state>/run/swarm.json`, swarm_bus.py), per capsule version
the nodes fetched since the bus started; a capsule nobody fetched through the swarm says so.
"""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule.layout import Store
from perceus.master.capsule.swarm_bus import read_state
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import mib


def add(verbs: Any) -> None:
    p = verbs.add_parser("status", help="bytes of a capsule sent by the master vs by peers, per rack (swarm)")
    p.add_argument("name")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    Store(ctx.paths).existing(ns.name)  # NotFoundError for a capsule that does not exist
    capsules = read_state(ctx.paths).get("capsules", {})
    mine = {h: c for h, c in capsules.items() if isinstance(c, dict) and c.get("name") == ns.name}
    if ctx.json:
        ctx.emit_json([{"manifest": h, **c} for h, c in mine.items()])
        return 0
    if not mine:
        ctx.out(f"VNFS '{ns.name}': no swarm transfers since perceus-bus started")
        return 0
    for h, c in mine.items():
        racks: dict[str, dict[str, int]] = c.get("racks", {})
        master = sum(r.get("master", 0) for r in racks.values())
        peers = sum(r.get("peers", 0) for r in racks.values())
        size = max(1, int(c.get("bytes", 0)))
        ctx.out(f"VNFS '{ns.name}' manifest {h[:16]}: {c.get('nodes', 0)} nodes, {c.get('complete', 0)} complete, "
                f"capsule {mib(size)}; master sent {mib(master)} ({master / size:.2f} x capsule), "
                f"peers {mib(peers)}")  # fmt: skip
        ctx.out(f"  {'rack':<16} {'from master':>14} {'from peers':>14} {'cross-rack':>14}")
        for rack, r in sorted(racks.items()):
            ctx.out(f"  {rack or '(none)':<16} {mib(r.get('master', 0)):>14} {mib(r.get('peers', 0)):>14} "
                    f"{mib(r.get('cross_rack', 0)):>14}")  # fmt: skip
        for peer in c.get("excluded", []):
            ctx.out(f"  excluded peer {peer}: served a chunk that failed verification")
    return 0
