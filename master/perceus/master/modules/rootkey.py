"""`rootkey`: the master's root SSH public key(s) in every node's /root/.ssh/authorized_keys (1.x's promise).

Perceus 1.x's init created /root/.ssh/id_dsa on the master and capsule `configure` copied root's `*.pub` into
each capsule's authorized_keys.  Here `perceus init` creates root's key where an admin expects it — root's own
`~/.ssh/id_ed25519`, unless root already has an id_ed25519/id_ecdsa/id_rsa — and copies root's public keys
into `<config>/modules/rootkey/authorized_keys`, the file this module sends (add or remove keys there).
It travels as a module action over the authenticated bus, never inside a capsule, and is on by default
(`perceus init` activates it for ready/all, so provisiond applies it when it starts).  DSA is not created:
OpenSSH dropped it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.master.sshkeygen import write_pair
from perceus.protocol.messages import Action

MODULE = "rootkey"
KIND = "authorized_keys"
ROOT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
MAX_KEYS = 64
# `[options] type base64 [comment]`: only lines of this shape are sent (a stray private key never is).
_KEY_LINE = re.compile(r"^(?:\S+\s+)?(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-\S+)\s+[A-Za-z0-9+/=]+")
HEADER = "# Public keys the rootkey module puts in every node's /root/.ssh/authorized_keys (one per line).\n"


def keys_file(paths: Paths) -> Path:
    return paths.config_dir / "modules" / MODULE / "authorized_keys"


def ensure_root_key(home: Path) -> Path | None:
    """Create `~/.ssh/id_ed25519` when root has none of the usual keys; returns the new key's path."""
    ssh = home / ".ssh"
    if any((ssh / name).exists() for name in ROOT_KEYS):
        return None
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = ssh / "id_ed25519"
    write_pair(path, "ed25519", "root@perceus-master")
    return path


def seed_keys_file(paths: Paths, home: Path) -> Path | None:
    """Write the module's authorized_keys from root's public keys, only if the file does not exist yet."""
    target = keys_file(paths)
    if target.exists():
        return None
    lines = [
        (home / ".ssh" / f"{name}.pub").read_text(encoding="ascii", errors="replace").strip()
        for name in ROOT_KEYS
        if (home / ".ssh" / f"{name}.pub").is_file()
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, (HEADER + "".join(f"{line}\n" for line in lines if line)).encode(), mode=0o644)
    return target


def load(path: Path) -> list[str]:
    """The key lines of `path` (comments and blanks dropped); a line that is not a public key is an error."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    keys: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _KEY_LINE.match(line):
            raise ConfigError(f"line {number} is not an SSH public key", path=str(path))
        keys.append(line)
    if len(keys) > MAX_KEYS:
        raise ConfigError(f"{len(keys)} keys (at most {MAX_KEYS})", path=str(path))
    return keys


def actions(paths: Paths) -> list[Action]:
    """The module action for a node (nothing when no key is configured)."""
    return actions_for(load(keys_file(paths)))


def actions_for(keys: Sequence[str]) -> list[Action]:
    """The module action carrying `keys` (nothing when there are none)."""
    return [Action(module=MODULE, kind=KIND, data={"keys": list(keys)})] if keys else []
