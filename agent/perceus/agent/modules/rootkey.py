"""`rootkey.authorized_keys`: the master's root public keys into <root>/root/.ssh/authorized_keys.

The keys sit between two marker lines, so keys the capsule already carries (or an admin added on the node)
stay; a new set replaces the old block.  The file is written to a temp name and renamed (0600, dir 0700).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from perceus.errors import ConfigError
from perceus.fsatomic import replace_with_new_file

BEGIN = "# BEGIN perceus rootkey (managed by the Perceus master; edits here are replaced)"
END = "# END perceus rootkey"
MAX_KEY = 16384
_KEY = re.compile(r"^(?:\S+\s+)?(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-\S+)\s+[A-Za-z0-9+/=]+")


def _keys(data: Any) -> list[str]:
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConfigError("rootkey: 'keys' must be a list of strings")
    for key in keys:
        if len(key) > MAX_KEY or "\n" in key or not _KEY.match(key):
            raise ConfigError(f"rootkey: not an SSH public key: {key[:40]!r}")
    return keys


def merge(old: str, keys: list[str]) -> str:
    """`old` without its managed block, then the block with `keys`."""
    kept: list[str] = []
    inside = False
    for line in old.splitlines():
        if line == BEGIN:
            inside = True
        elif line == END:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join([*kept, BEGIN, *keys, END]) + "\n"


def apply(root: Path, data: Any) -> bool:
    """Write the keys; True when the file changed."""
    keys = _keys(data)
    ssh = root / "root" / ".ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ssh, 0o700)
    path = ssh / "authorized_keys"
    try:
        old = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        old = ""
    new = merge(old, keys)
    if new == old:
        return False
    replace_with_new_file(path, new.encode("utf-8"), 0o600)
    return True
