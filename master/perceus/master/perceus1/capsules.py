"""Inventory of Perceus 1.x capsules (`<old-state>/vnfs/<name>/`, 1.x ref §9.2) and whether they convert.

Each capsule is checked the way the new capsule builder will need it: a `config` (read as `KEY=value` lines,
never sourced), a root filesystem (`rootfs/`, or the packed `vnfs.img` with nothing else), and a kernel
(`rootfs/$KERNEL`).  Conversion goes through the capsule importer (`perceus.master.capsule.importer`): the
`rootfs/` tree (or the packed `vnfs.img` newc cpio when that is all there is) becomes a content-addressed
capsule with the old kernel arguments, kexec arguments, console and type; it is built in a temp dir and
renamed at the end, so a capsule that cannot be converted is reported, never half-imported.  The old
directory is only read.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from perceus.errors import PerceusError
from perceus.master.config import Paths

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$")
_CONSOLE = re.compile(r"(?:^|\s)console=(\S+)")
STATEFUL_KEYS = ("TARGETS", "FILESYSTEM", "BOOT_SIZE", "SWAP_SIZE", "RAID")


@dataclass
class LegacyCapsule:
    """One old capsule and what the conversion would take from it."""

    name: str
    path: Path
    kind: str = "stateless"
    kernel: str = ""
    kernel_args: str = ""
    kexec_args: str = ""
    console: str = ""
    root: str = ""  # "rootfs" | "vnfs.img" | ""
    status: str = "not converted"
    problems: list[str] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "type": self.kind,
            "kernel": self.kernel,
            "kernel_args": self.kernel_args,
            "kexec_args": self.kexec_args,
            "console": self.console,
            "root": self.root,
            "status": self.status,
            "problems": list(self.problems),
        }


def read_config(path: Path) -> dict[str, str]:
    """`KEY=value` assignments of a sourced-shell config; includes, conditionals and commands are ignored."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _ASSIGN.match(line)
        if not match:
            continue
        try:
            words = shlex.split(match.group(2), comments=True, posix=True)
        except ValueError:
            continue
        out[match.group(1)] = " ".join(words)
    return out


def inspect(directory: Path) -> LegacyCapsule:
    """Check one capsule directory."""
    cap = LegacyCapsule(name=directory.name, path=directory)
    config = directory / "config"
    if not config.is_file():
        cap.problems.append("no config file (1.x did not list it either)")
        return cap
    cap.config = conf = read_config(config)
    cap.kind = "stateful" if any(k in conf for k in STATEFUL_KEYS) or ".stateful." in cap.name else "stateless"
    cap.kernel_args = conf.get("KERNEL_ARGS", "")
    cap.kexec_args = conf.get("KEXEC_ARGS", "")
    console = _CONSOLE.findall(cap.kernel_args)
    cap.console = console[-1] if console else ""
    rootfs = directory / "rootfs"
    image = directory / "vnfs.img"
    if rootfs.is_dir() and any(rootfs.iterdir()):
        cap.root = "rootfs"
    elif image.is_file() and image.stat().st_size > 0:
        cap.root = "vnfs.img"
    else:
        cap.problems.append("neither a rootfs/ tree nor a non-empty vnfs.img")
    kernel = conf.get("KERNEL", "")
    if not kernel:
        cap.problems.append("config has no KERNEL")
    else:
        cap.kernel = kernel
        if cap.root == "rootfs" and not (rootfs / kernel.lstrip("/")).is_file():
            cap.problems.append(f"kernel {kernel} not found in rootfs/")
    return cap


def scan(old_state: Path) -> list[LegacyCapsule]:
    """Every capsule directory under `<old-state>/vnfs/`."""
    root = old_state / "vnfs"
    if not root.is_dir():
        return []
    return [inspect(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]


def plan_conversion(capsules: list[LegacyCapsule], new_vnfs: Path) -> None:
    """Status before anything is written: what `convert` will do with each capsule."""
    for cap in capsules:
        if cap.problems:
            cap.status = "not convertible"
        elif (new_vnfs / cap.name).is_dir():
            cap.status = "already imported"
        else:
            cap.status = "will convert"


def convert(paths: Paths, capsules: list[LegacyCapsule]) -> list[str]:
    """Import every capsule marked "will convert"; returns warnings for those that failed."""
    from perceus.master.capsule.importer import Settings, import_capsule

    warnings: list[str] = []
    for cap in capsules:
        if cap.status != "will convert":
            continue
        settings = Settings(
            type=cap.kind,
            console=cap.console or None,
            kernel_args=cap.kernel_args or None,
            kexec_args=cap.kexec_args or None,
        )
        try:
            if cap.root == "rootfs":
                source, kind = cap.path / "rootfs", "dir"
                kernel: Path | None = source / cap.kernel.lstrip("/")
            else:
                source, kind, kernel = cap.path / "vnfs.img", "cpio", None
            result = import_capsule(paths, source, name=cap.name, kind=kind, settings=settings, kernel=kernel,
                                    with_provisiond=False)  # fmt: skip
        except PerceusError as exc:
            cap.status = "failed"
            cap.problems.append(str(exc))
            warnings.append(f"capsule {cap.name}: not converted: {exc}")
            continue
        cap.status = f"converted ({result.files} files)"
    return warnings
