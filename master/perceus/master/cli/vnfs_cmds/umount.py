"""`perceus vnfs umount NAME`: repack what changed into a new version and close the capsule."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule.manage import umount
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import describe, progress


def add(verbs: Any) -> None:
    p = verbs.add_parser("umount", help="repack an edited capsule (only changed chunks are rebuilt)")
    p.add_argument("name")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    with progress(ctx) as bar:
        result = umount(ctx.paths, ns.name, progress=bar)
    assert result is not None
    if result.changed:
        ctx.info(describe(result))
        ctx.out(f"VNFS '{ns.name}' has been successfully un-mounted and updated.")
    else:
        ctx.out(f"VNFS '{ns.name}' has been un-mounted (unchanged, version {result.manifest.version}).")
    return 0
