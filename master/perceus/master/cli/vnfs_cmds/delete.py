"""`perceus vnfs delete NAME`: refused while nodes use it (unless --force); unused chunks are collected."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.errors import ConflictError
from perceus.master.capsule.layout import Store
from perceus.master.capsule.manage import delete
from perceus.master.cli.context import CliContext
from perceus.master.cli.vnfs_cmds.common import mib


def add(verbs: Any) -> None:
    p = verbs.add_parser("delete", help="delete a capsule (and the chunks no other capsule uses)")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="delete even though nodes still use it")
    p.set_defaults(func=run)


def run(ctx: CliContext, ns: argparse.Namespace) -> int:
    Store(ctx.paths).existing(ns.name)
    users = [n.hostname for n in ctx.store.list_nodes() if n.vnfs == ns.name]
    if users and not ns.force:
        shown = ", ".join(users[:5]) + (", …" if len(users) > 5 else "")
        raise ConflictError(f"VNFS {ns.name!r} is used by {len(users)} node(s) ({shown}); use --force")
    if not ctx.confirm(f"Are you sure you wish to delete VNFS '{ns.name}'?"):
        ctx.info("Nothing deleted.")
        return 1
    freed = delete(ctx.paths, ns.name)
    ctx.notify("nfs_reload")  # a hybrid capsule's export goes with it
    ctx.out(f"VNFS '{ns.name}' has been deleted ({mib(freed)} of chunks freed).")
    return 0
