"""`perceus configure sshkeys [--force]` (spec §2.8): cluster-wide SSH host keys under `<config>/keys/`.

Differences from Perceus 1.x, on purpose: no rsa1/DSA keys (OpenSSH removed them) but rsa, ecdsa and ed25519;
no root identity and no StrictHostKeyChecking=no in root's ssh_config; and the keys reach nodes only over the
authenticated bus as a module action to enrolled nodes (security/hostkeys.py), never in a capsule or via TFTP.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from typing import Any

from perceus.errors import ConfigError
from perceus.master.cli.context import CliContext
from perceus.master.security.hostkeys import KEY_TYPES


def register_sshkeys(verbs: Any) -> None:
    v = verbs.add_parser("sshkeys", help="cluster SSH host keys (sent to enrolled nodes over the secure bus)")
    v.add_argument("--force", action="store_true", help="replace existing host keys")
    v.set_defaults(func=sshkeys)


def sshkeys(ctx: CliContext, ns: argparse.Namespace) -> int:
    ctx.paths.ensure()
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise ConfigError("ssh-keygen is not installed (apt-get install openssh-client)")
    target = ctx.paths.config_dir / "keys"
    target.mkdir(parents=True, exist_ok=True)
    wanted = [k for k in KEY_TYPES if ns.force or not (target / f"ssh_host_{k}_key").exists()]
    if not wanted:
        ctx.info(f"SSH host keys already exist in {target} (use --force to replace them)")
        return 0
    # Everything is generated in a temp dir first: a failure leaves the old keys (or none) untouched.
    with tempfile.TemporaryDirectory(dir=target, prefix=".sshkeys-") as tmp:
        for kind in wanted:
            path = os.path.join(tmp, f"ssh_host_{kind}_key")
            result = subprocess.run(
                [keygen, "-q", "-t", kind, "-N", "", "-C", "perceus cluster host key", "-f", path],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            if result.returncode != 0:
                raise ConfigError(f"ssh-keygen -t {kind} failed: {result.stderr.strip() or result.returncode}")
        for kind in wanted:
            for suffix, mode in (("", 0o600), (".pub", 0o644)):
                name = f"ssh_host_{kind}_key{suffix}"
                os.chmod(os.path.join(tmp, name), mode)
                os.replace(os.path.join(tmp, name), target / name)
    ctx.info(f"Created SSH host keys ({', '.join(wanted)}) in {target}")
    return 0
