"""`perceus vnfs show NAME…`: a capsule's config keys, the kernel command line its nodes get, and notes on
how its 1.x settings are applied (KEXEC_ARGS words, global-vnfs.config, per-node/group overrides)."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.capsule import hybrid
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.capsule.layout import Store
from perceus.master.capsule.manage import boot_notes, info
from perceus.master.capsule.pack import current
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import mib
from perceus.protocol.capsule import kernel_cmdline


def add(verbs: Any) -> None:
    p = verbs.add_parser("show", help="a capsule's settings, effective kernel command line and notes")
    p.add_argument("names", nargs="+", metavar="name")
    p.set_defaults(func=run)


def _data(ctx: CliContext, name: str) -> dict[str, Any]:
    cap = Store(ctx.paths).existing(name)
    cfg = CapsuleConfig.load(cap.config)
    manifest = current(cap)
    summary = hybrid.read_summary(cap) if cfg.type == "hybrid" else None
    return {
        **info(ctx.paths, name).as_dict(),
        # What a node holds in RAM (the root stream it boots) and what it mounts over NFS instead (hybrid).
        "ram_image_bytes": manifest.rootfs.size if manifest is not None else 0,
        "nfs": summary,
        "config": dict(cfg.values),
        "effective": dict(cfg.effective(ctx.paths.config_dir).values),
        "cmdline": kernel_cmdline(manifest, current="") if manifest is not None else "",
        "notes": boot_notes(ctx.paths, name),
    }


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    rows = [_data(ctx, n) for n in ns.names]
    if ctx.json:
        ctx.emit_json(rows)
        return 0
    for row in rows:
        ctx.out(f"{row['name']}:")
        for key in ("type", "version", "kernel", "manifest"):
            ctx.out(f"   {key:<18}{row[key]}")
        ctx.out(f"   {'ram image':<18}{mib(row['ram_image_bytes'])}")
        if row["nfs"] is not None:
            nfs = row["nfs"]
            ctx.out(f"   {'nfs part':<18}{mib(int(nfs['bytes']))} ({nfs['entries']} entries) as {nfs['export']}")
            ctx.out(f"   {'hybridized':<18}{' '.join(nfs['paths'])}")
        for key, value in row["config"].items():
            shown = row["effective"].get(key, value)
            ctx.out(f"   {key:<18}{value}" + (f"   (effective: {shown})" if shown != value else ""))
        ctx.out(f"   {'cmdline':<18}{row['cmdline']}")
        for note in row["notes"]:
            ctx.out(f"   note: {note}")
    return 0
