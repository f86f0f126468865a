"""`perceus vnfs mount NAME`: mark the capsule editable (1.x: a /mnt/NAME symlink to its rootfs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.master.capsule.manage import mount
from perceus.master.cli.context import CliContext


def add(verbs: Any) -> None:
    p = verbs.add_parser("mount", help="open a capsule's root tree for editing")
    p.add_argument("name")
    p.add_argument("--link-dir", type=Path, help="also create LINK_DIR/NAME -> rootfs (1.x used /mnt)")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    where = mount(ctx.paths, ns.name, ns.link_dir)
    ctx.out(f"The VNFS can be found at: {where}")
    return 0
