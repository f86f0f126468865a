"""`perceus vnfs clone SRC DST`: a copy under a new name; it shares every chunk with SRC."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule.importer import clone_capsule
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import describe, progress


def add(verbs: Any) -> None:
    p = verbs.add_parser("clone", help="copy a capsule under a new name")
    p.add_argument("source")
    p.add_argument("dest")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    with progress(ctx) as bar:
        result = clone_capsule(ctx.paths, ns.source, ns.dest, progress=bar)
    ctx.info(describe(result))
    ctx.out(f"VNFS '{ns.source}' has been cloned to '{ns.dest}'.")
    return 0
