"""First activation of a built-in module creates its configuration skeleton, never overwriting anything.

As 1.x's `activate` programs did: passwdfile/groupfile start from the master's /etc/passwd and /etc/group
(only when their directory does not exist yet), ipaddr gets the shipped default rule.  Unlike 1.x's
stateful `activate`, which wiped its configuration directory, existing flags are kept.
"""

from __future__ import annotations

from pathlib import Path

from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.master.modules import ipaddr

MODPROBE_HELP = "# name: module …   (name = all, a node, a group or a vnfs)\n"


def config_path(paths: Paths, module: str) -> Path:
    return paths.config_dir / "modules" / module


def seed(paths: Paths, module: str, *, etc: Path = Path("/etc")) -> list[Path]:
    """Create what `module` reads if missing; returns what was created."""
    made: list[Path] = []
    base = config_path(paths, module)
    if module in ("passwdfile", "groupfile") and not base.exists():
        source = etc / ("passwd" if module == "passwdfile" else "group")
        for sub in ("vnfs", "group", "node"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        try:
            data = source.read_bytes()
        except OSError:
            data = b""
        atomic_write(base / "all", data, mode=0o644)
        made.append(base / "all")
    elif module in ("ipaddr", "modprobe") and not base.exists():
        atomic_write(base, (ipaddr.DEFAULT_RULES if module == "ipaddr" else MODPROBE_HELP).encode(), mode=0o644)
        made.append(base)
    elif module == "stateful":
        for sub in ("ready", "reinit/vnfs", "reinit/group", "reinit/node"):
            if not (base / sub).is_dir():
                (base / sub).mkdir(parents=True, exist_ok=True)
                made.append(base / sub)
    return made
