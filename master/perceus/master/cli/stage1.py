"""`perceus stage1 build`: the stage-one kernel + initramfs into the TFTP root the network manager serves."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.master.cli.context import CliContext


def register(sub: Any) -> None:
    p = sub.add_parser("stage1", help="build the stage-one image nodes PXE-boot")
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))
    v = verbs.add_parser("build", help="build (or reuse, by content hash) vmlinuz + stage1.cpio.zst")
    v.add_argument("--out", type=Path, help="output directory (default <statedir>/tftp)")
    v.add_argument("--fast", action="store_true", help="zstd -3 instead of -19: faster build, ~6 MB larger image")
    v.add_argument("--cache", type=Path, help="download/build cache (default ~/.cache/perceus)")
    v.set_defaults(func=build)


def build(ctx: CliContext, ns: argparse.Namespace) -> int:
    from perceus.stage1 import build as build_image

    ctx.paths.ensure()
    out = ns.out or ctx.paths.tftp

    def progress(event: str, **fields: Any) -> None:
        # Long build: show each step on stderr (the CLI's log level hides info events otherwise).
        if not ctx.quiet:
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"stage1: {event} {detail}".rstrip(), file=ctx.stderr, flush=True)

    result = build_image(out, level=3 if ns.fast else 19, cache_dir=ns.cache, progress=progress)
    if ctx.json:
        ctx.emit_json({"kernel": str(result.kernel), "initrd": str(result.initrd), "initrd_size": result.initrd_size,
                       "key": result.key, "cached": result.cached})  # fmt: skip
    else:
        ctx.info(f"stage one: {result.kernel} and {result.initrd} ({result.initrd_size / 1e6:.1f} MB)"
                 + (" — unchanged, from cache" if result.cached else ""))  # fmt: skip
    ctx.notify("dnsmasq_restart")  # boot.ipxe names the files; perceus-bus rewrites it
    return 0
