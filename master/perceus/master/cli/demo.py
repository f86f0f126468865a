"""`perceus demo`: the main job — a master plus QEMU nodes that PXE-boot, provision and check in."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from perceus.errors import PerceusError, UsageError
from perceus.master.cli.context import CliContext


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="boot QEMU nodes end to end against a master in a private namespace (root)")
    p.add_argument("--nodes", type=int, default=3, help="how many QEMU nodes (default 3)")
    p.add_argument("--workdir", help="keep config, state and logs here (default: a temp dir, removed after)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds until every node must have checked in")
    p.add_argument("--stagger", type=float, default=2.0, help="seconds between node power-ons (boot order)")
    p.add_argument("--preadd", metavar="NAME,IP", help="pre-add the last node with this name and static IP")
    p.add_argument("--fast-image", action="store_true", help="build stage one at zstd -3 (faster build, larger)")
    p.add_argument("--web", action="store_true", help="keep the master, nodes and dashboard up afterwards (Ctrl-C)")
    p.set_defaults(func=demo)


def demo(ctx: CliContext, ns: argparse.Namespace) -> int:
    from perceus.lab.demo import run_demo, summary_table

    if not 1 <= ns.nodes <= 16:
        raise UsageError("--nodes must be between 1 and 16")
    preadd = None
    if ns.preadd:
        name, _, ip = ns.preadd.partition(",")
        if not name or not ip:
            raise UsageError("--preadd takes NAME,IP")
        preadd = (name, ip)
    workdir = Path(ns.workdir) if ns.workdir else Path(tempfile.mkdtemp(prefix="perceus-demo-"))
    try:
        result = run_demo(workdir, nodes=ns.nodes, stagger=ns.stagger, timeout=ns.timeout, preadd=preadd,
                          stage1_level=3 if ns.fast_image else 19, out=ctx.stdout, keep_web=ns.web)  # fmt: skip
    except PerceusError:
        ctx.out(f"demo: logs kept in {workdir}")
        raise
    if ctx.json:
        ctx.emit_json({"wall": result.wall, "nodes": [
            {"node": n.qemu.name, "hostname": n.hostname, "mac": n.mac, "ip": n.ip, **n.summary()} for n in result.nodes
        ]})  # fmt: skip
    else:
        ctx.out("")
        ctx.out(summary_table(result))
    if ns.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        ctx.out(f"demo: config, state and logs in {workdir}")
    return 0
