"""The image skeleton: merged-/usr directories, /etc basics and the /init script."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

# Like Debian (merged /usr): the top-level directories are relative links, so
# build-host tools (depmod -b, ldconfig -r) resolve them inside the tree too.
MERGED_USR = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
DIRS = (
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/lib64",
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "root",
    "etc",
    "mnt",
)
# /dev/console must exist before /init runs: the kernel opens it for PID 1's stdio.
CHAR_DEVICES = {"dev/console": (0o600, 5, 1), "dev/null": (0o666, 1, 3)}

_PASSWD = "root:x:0:0:root:/root:/bin/sh\n"  # noqa: S105 - a file name or a passwd line, not a password
_GROUP = "root:x:0:\ntty:x:5:\n"


def skeleton(root: Path) -> None:
    """Create the directory layout and merged-/usr links in an empty ``root``."""
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    for name, target in MERGED_USR.items():
        (root / name).symlink_to(target)


def init_script() -> bytes:
    """The /init shipped as package data next to this module."""
    return resources.files("perceus.stage1").joinpath("init").read_bytes()


def write_etc(root: Path, build_info: dict[str, object]) -> None:
    """Minimal /etc plus /etc/perceus/stage1.json describing the build (read by the agent and admins)."""
    etc = root / "etc"
    (etc / "passwd").write_text(_PASSWD)
    (etc / "group").write_text(_GROUP)
    (etc / "hostname").write_text("perceus-stage1\n")
    (etc / "perceus").mkdir(exist_ok=True)
    (etc / "perceus" / "stage1.json").write_text(json.dumps(build_info, indent=2, sort_keys=True) + "\n")
    init = root / "init"
    init.write_bytes(init_script())
    init.chmod(0o755)
