"""`perceus vnfs close NAME`: un-mount without repacking (edits are picked up by the next umount/rebuild)."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule.manage import umount
from perceus.master.cli.context import CliContext


def add(verbs: Any) -> None:
    p = verbs.add_parser("close", help="un-mount without repacking")
    p.add_argument("name")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    umount(ctx.paths, ns.name, rebuild=False)
    ctx.out(f"VNFS '{ns.name}' has been closed (not repacked).")
    return 0
