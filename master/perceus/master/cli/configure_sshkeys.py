"""`perceus configure sshkeys [--force]` (1.x ref §2.8): cluster-wide SSH host keys under `<config>/keys/`.

Differences from Perceus 1.x, on purpose: no rsa1/DSA keys (OpenSSH removed them) but rsa, ecdsa and ed25519;
no StrictHostKeyChecking=no in root's ssh_config; and the keys reach nodes only over the authenticated bus
as a module action to enrolled nodes (security/hostkeys.py), never in a capsule or via TFTP.  Root's own key
for the nodes is the `rootkey` module's (modules/rootkey.py, created by `perceus init`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.master.cli.context import CliContext
from perceus.master.config import Paths
from perceus.master.security.hostkeys import KEY_TYPES
from perceus.master.sshkeygen import write_pair


def register_sshkeys(verbs: Any) -> None:
    v = verbs.add_parser("sshkeys", help="cluster SSH host keys (sent to enrolled nodes over the secure bus)")
    v.add_argument("--force", action="store_true", help="replace existing host keys")
    v.set_defaults(func=sshkeys)


def host_keys_dir(paths: Paths) -> Path:
    return paths.config_dir / "keys"


def create_host_keys(paths: Paths, *, force: bool = False) -> list[str]:
    """Create the missing (or, with `force`, all) cluster host keys; returns the key types written."""
    target = host_keys_dir(paths)
    wanted = [k for k in KEY_TYPES if force or not (target / f"ssh_host_{k}_key").exists()]
    for kind in wanted:
        write_pair(target / f"ssh_host_{kind}_key", kind, "perceus cluster host key")
    return wanted


def sshkeys(ctx: CliContext, ns: argparse.Namespace) -> int:
    ctx.paths.ensure()
    target = host_keys_dir(ctx.paths)
    wanted = create_host_keys(ctx.paths, force=ns.force)
    if not wanted:
        ctx.info(f"SSH host keys already exist in {target} (use --force to replace them)")
        return 0
    ctx.info(f"Created SSH host keys ({', '.join(wanted)}) in {target}")
    return 0
