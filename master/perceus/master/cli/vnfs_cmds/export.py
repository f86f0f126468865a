"""`perceus vnfs export NAME [FILE]`: a 1.x-compatible `.vnfs` (or .tar/.tar.gz/.tar.zst by suffix)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.master.capsule.export import export_capsule
from perceus.master.capsule.layout import check_name
from perceus.master.capsule.pack import tree_size
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import progress


def add(verbs: Any) -> None:
    p = verbs.add_parser("export", help="write a capsule as a Perceus .vnfs (bzip2 tar of config + rootfs/)")
    p.add_argument("name")
    p.add_argument("file", nargs="?", type=Path, help="output (default ~/vnfs-exports/NAME.vnfs)")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    name = check_name(ns.name)
    out: Path = ns.file or Path.home() / "vnfs-exports" / f"{name}.vnfs"
    out.parent.mkdir(parents=True, exist_ok=True)
    with progress(ctx) as bar:
        rootfs = ctx.paths.vnfs / name / "rootfs"
        export_capsule(ctx.paths, name, out, progress=bar("export", tree_size(rootfs)) if rootfs.is_dir() else None)
    ctx.out(f"VNFS '{name}' exported to {out}")
    return 0
