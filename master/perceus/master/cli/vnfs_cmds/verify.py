"""`perceus vnfs verify NAME`: check the manifest and every chunk (hash, size, zstd frame)."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.capsule.verify import verify
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import mib, progress


def add(verbs: Any) -> None:
    p = verbs.add_parser("verify", help="check a capsule's manifest and chunks")
    p.add_argument("name")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    m = current(Store(ctx.paths).existing(ns.name))
    total = sum(c.raw_size for c in m.all_chunks()) if m else 0
    with progress(ctx) as bar:
        report = verify(ctx.paths, ns.name, progress=bar("verify", total))
    if ctx.json:
        ctx.emit_json(report.__dict__)
    else:
        for problem in report.problems:
            ctx.out(f"BAD  {problem}")
        state = "OK" if not report.problems else f"{len(report.problems)} problem(s)"
        ctx.out(
            f"VNFS '{ns.name}': manifest {report.manifest[:16]}, {report.chunks} chunks, {mib(report.bytes)}: {state}"
        )
    return 0 if not report.problems else 1
