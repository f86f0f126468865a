"""`perceus vnfs …` (1.x ref §4.6): one module per verb in `vnfs_cmds/`, registered here."""

from __future__ import annotations

import importlib
from typing import Any

VERBS = (
    "import_",
    "export",
    "list_",
    "show",
    "delete",
    "mount",
    "umount",
    "close",
    "rebuild",
    "clone",
    "configure",
    "verify",
    "status",
    "genchroot",
)


def register(sub: Any) -> None:
    p = sub.add_parser("vnfs", help="manage VNFS capsules (import, list, mount/umount, configure, verify …)")
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))
    for name in VERBS:
        importlib.import_module(f"perceus.master.cli.vnfs_cmds.{name}").add(verbs)
