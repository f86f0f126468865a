"""`perceus init`: create the config and state directories, default files and the node database."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.master.cli.context import CliContext


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="initialise configuration, state directory and database")
    p.set_defaults(func=init)


def init(ctx: CliContext, ns: argparse.Namespace) -> int:
    ctx.paths.ensure()  # creates only what is missing; never overwrites
    version = ctx.store.schema_version()
    if ctx.json:
        ctx.emit_json(
            {
                "config_dir": str(ctx.paths.config_dir),
                "state_dir": str(ctx.paths.state_dir),
                "schema_version": version,
            }
        )
    else:
        ctx.info(
            f"Configuration in {ctx.paths.config_dir}, state in {ctx.paths.state_dir} (database schema {version})."
        )
        ctx.info("Perceus is now ready to begin provisioning your cluster!")
    return 0
