"""`perceus vnfs genchroot debian SUITE DIR`: build a minimal Debian root with debootstrap and the agent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.errors import CapsuleError
from perceus.master.capsule.genchroot import DEFAULT_MIRROR, genchroot_debian
from perceus.master.cli.context import CliContext


def add(verbs: Any) -> None:
    p = verbs.add_parser("genchroot", help="build a chroot for a capsule (debian: debootstrap)")
    p.add_argument("distro", choices=["debian"])
    p.add_argument("suite", help="e.g. bookworm")
    p.add_argument("dir", type=Path)
    p.add_argument("--mirror", default=DEFAULT_MIRROR)
    p.add_argument("--arch", default="amd64")
    p.add_argument("--include", default="", help="extra packages, comma separated")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    import perceus.agent as agent_pkg

    try:
        from perceus.stage1.wheels import PINS  # the same pinned wheels the stage-one image carries
    except ImportError as exc:
        raise CapsuleError(f"cannot find the agent's wheel pins: {exc}") from None
    agent_src = Path(agent_pkg.__file__).resolve().parents[2]
    extra = [p for p in ns.include.split(",") if p]
    ctx.info(f"Building Debian {ns.suite} in {ns.dir} (debootstrap; this takes a few minutes)…")
    genchroot_debian(ns.suite, ns.dir, agent_src=agent_src, pins=PINS, arch=ns.arch, mirror=ns.mirror, extra=extra)
    ctx.out(f"WROTE: {ns.dir}  (next: perceus vnfs import {ns.dir} --name debian-{ns.suite})")
    return 0
