"""`perceus vnfs rebuild NAME`: repack from scratch (recompress everything, repair damaged chunk files)."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule.manage import rebuild
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import describe, progress


def add(verbs: Any) -> None:
    p = verbs.add_parser("rebuild", help="repack a capsule from its tree")
    p.add_argument("name")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    with progress(ctx) as bar:
        result = rebuild(ctx.paths, ns.name, progress=bar)
    ctx.info(describe(result))
    ctx.out(f"VNFS '{ns.name}' has been rebuilt" + ("." if result.changed else " (unchanged)."))
    return 0
