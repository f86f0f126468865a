"""`perceus vnfs import SOURCE`: a chroot dir, a rootfs tar (.gz/.bz2/.xz/.zst), a 1.x `.vnfs`, or an
image archive from `podman save` / `docker save`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.manage import boot_notes
from perceus.master.capsule.sources import KINDS
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import (
    add_config_flags,
    ask_console,
    describe,
    hybrid_line,
    progress,
    settings,
)


def add(verbs: Any) -> None:
    p = verbs.add_parser("import", help="import a chroot, tar, .vnfs capsule or OCI/docker image archive")
    p.add_argument("source", type=Path)
    p.add_argument("--name", help="capsule name (default: the source's basename without suffix)")
    p.add_argument("--format", choices=KINDS, help="source format (default: detected)")
    p.add_argument("--kernel", type=Path, help="kernel file to add as /boot/<name> (images rarely carry one)")
    p.add_argument("--no-provisiond", action="store_true",
                   help="do not add the runtime agent to a systemd root that lacks it")  # fmt: skip
    add_config_flags(p)
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    wanted = settings(ns)
    if ns.console is None and ctx.stdin.isatty() and not ctx.yes:
        wanted = dataclasses.replace(wanted, console=ask_console(ctx, ""))  # as 1.x's import asked
    with progress(ctx) as bar:
        result = import_capsule(
            ctx.paths, ns.source, name=ns.name, kind=ns.format, settings=wanted, kernel=ns.kernel, progress=bar,
            with_provisiond=not ns.no_provisiond,
        )  # fmt: skip
    hybrid = hybrid_line(ctx.paths, result.name)
    if hybrid is not None:
        ctx.notify("nfs_reload")  # perceus-bus exports the new capsule's NFS part now, not at its next scan
    if ctx.json:
        ctx.emit_json(
            {
                "name": result.name,
                "manifest": result.packed.manifest.hash,
                "files": result.files,
                "skipped_devices": result.skipped_devices,
                "kind": result.source.kind,
            }
        )
        return 0
    for note in result.source.notes + boot_notes(ctx.paths, result.name):
        ctx.info(f"note: {note}")
    if result.skipped_devices:
        ctx.warn(f"{result.skipped_devices} device node(s) skipped (not root); /dev basics are added at boot")
    ctx.info(f"{result.files} entries, {describe(result.packed)}")
    if hybrid is not None:
        ctx.info(hybrid)
    ctx.out(f"VNFS '{result.name}' has been successfully imported.")
    return 0
