"""`perceus init`: config and state directories, default files, the node database, the default node scripts,
the cluster SSH host keys, root's SSH key for the nodes (module `rootkey`, activated) and the systemd unit.

What the FAQ says 1.x's initialisation does, minus what does not apply: no registration, no NFS exports
(capsules travel over the bus).  Nothing existing is overwritten; running it again only adds what is missing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from perceus.errors import PerceusError
from perceus.master import defaultscripts, service_unit
from perceus.master.cli.configure_sshkeys import create_host_keys, host_keys_dir
from perceus.master.cli.context import CliContext
from perceus.master.config import DEFAULT_CONFIG_DIR, DEFAULT_STATE_DIR
from perceus.master.modules import rootkey
from perceus.master.store.models import Activation


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="initialise configuration, state directory, database, SSH keys and service")
    p.add_argument("--service", dest="service", action="store_const", const=True, default=None,
                   help="install and enable the systemd unit even for non-default directories")  # fmt: skip
    p.add_argument("--no-service", dest="service", action="store_const", const=False,
                   help="do not install the systemd unit")  # fmt: skip
    p.set_defaults(func=init)


def _wants_service(ctx: CliContext, choice: bool | None) -> bool:
    """By default only a real install (default directories, root, a running systemd) gets the unit."""
    if choice is not None:
        return choice
    default_dirs = ctx.paths.config_dir == DEFAULT_CONFIG_DIR and ctx.paths.state_dir == DEFAULT_STATE_DIR
    return default_dirs and os.geteuid() == 0 and service_unit.SYSTEMD_RUNNING.is_dir()


def init(ctx: CliContext, ns: argparse.Namespace) -> int:
    paths = ctx.paths
    paths.ensure()  # creates only what is missing; never overwrites
    version = ctx.store.schema_version()
    created: list[str] = [str(p) for p in defaultscripts.install(paths)]
    host_keys = create_host_keys(paths)
    if host_keys:
        created.append(f"{host_keys_dir(paths)} (SSH host keys: {', '.join(host_keys)})")
    home = Path.home()
    key = rootkey.ensure_root_key(home)
    if key is not None:
        created.append(f"{key} (root's SSH key for the nodes)")
    seeded = rootkey.seed_keys_file(paths, home)
    if seeded is not None:
        created.append(str(seeded))
        # On by default, like 1.x's: activated once, when its key file is first written (a later
        # `module deactivate rootkey` is respected by the next init).
        wanted = Activation(rootkey.MODULE, "ready", "all")
        if wanted not in set(ctx.store.activations(rootkey.MODULE)):
            ctx.store.activate([wanted])
            ctx.notify("modules_changed")
    service = ""
    if _wants_service(ctx, ns.service):
        try:
            unit, _ = service_unit.install(paths, start=service_unit.SYSTEMD_RUNNING.is_dir())
        except PerceusError as exc:
            ctx.warn(f"systemd unit not enabled: {exc}")
        else:
            service = "enabled"
            if unit is not None:
                created.append(str(unit))
    if ctx.json:
        ctx.emit_json(
            {
                "config_dir": str(paths.config_dir),
                "state_dir": str(paths.state_dir),
                "schema_version": version,
                "created": created,
                "service": service,
            }
        )
        return 0
    for path in created:
        ctx.info(f"Created {path}")
    ctx.info(f"Configuration in {paths.config_dir}, state in {paths.state_dir} (database schema {version}).")
    if service:
        ctx.info(f"perceus-bus is enabled ({service_unit.UNIT}).")
    else:
        ctx.info("Start the master with `perceusd` (or `perceus-bus --foreground`).")
    ctx.info("Perceus is now ready to begin provisioning your cluster!")
    return 0
