"""`perceus vnfs configure NAME`: console, kernel/kexec args, type — flags, or prompts on a terminal only.

Unlike 1.x's capsule `configure` script we never chroot into the capsule or run its programs on the
master; root passwords, DNS, NTP … belong in the tree (mount/umount) or in modules.
"""

from __future__ import annotations

import argparse
from typing import Any

from perceus.errors import UsageError
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.capsule.importer import Settings
from perceus.master.capsule.layout import Store
from perceus.master.capsule.manage import boot_notes, configure
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import add_config_flags, describe, hybrid_line, progress, settings

PROMPTS = (
    ("type", "TYPE", "Capsule type (stateless/stateful/hybrid)"),
    ("console", "CONSOLE", "Console device"),
    ("kernel_args", "KERNEL_ARGS", "Kernel arguments"),
    ("kexec_args", "KEXEC_ARGS", "kexec arguments"),
)


def add(verbs: Any) -> None:
    p = verbs.add_parser("configure", help="change console, kernel/kexec arguments or type")
    p.add_argument("name")
    p.add_argument("--kernel", metavar="VERSION", help="boot this kernel of the capsule (/boot/vmlinuz-VERSION)")
    add_config_flags(p)
    p.set_defaults(func=run)


def _ask(ctx: CliContext, cfg: CapsuleConfig) -> Settings:
    answers: dict[str, Any] = {}
    for attr, key, question in PROMPTS:
        current = cfg.get(key) if key != "TYPE" else cfg.type
        print(f"{question} [{current}]: ", end="", file=ctx.stdout, flush=True)
        line = ctx.stdin.readline()
        answer = line.strip()
        answers[attr] = answer if answer else None
    return Settings(**answers)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    wanted = settings(ns)
    if wanted == Settings() and ns.kernel is None:
        if not ctx.stdin.isatty():
            raise UsageError(
                "nothing to change: give --console, --kernel-args, --kexec-args, --type, --hybridize or --kernel"
            )
        cap = Store(ctx.paths).existing(ns.name)
        wanted = _ask(ctx, CapsuleConfig.load(cap.config))
    with progress(ctx) as bar:
        result = configure(ctx.paths, ns.name, wanted, kernel=ns.kernel, progress=bar)
    if result is None:
        ctx.out(f"VNFS '{ns.name}' is unchanged.")
    else:
        for note in boot_notes(ctx.paths, ns.name):
            ctx.info(f"note: {note}")
        ctx.info(describe(result))
        hybrid = hybrid_line(ctx.paths, ns.name)
        if hybrid is not None:
            ctx.info(hybrid)
        ctx.notify("nfs_reload")  # the NFS part may have appeared, changed or gone (type or list changed)
        ctx.out(f"VNFS '{ns.name}' has been configured.")
    return 0
