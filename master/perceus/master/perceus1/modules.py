"""Module activations of a Perceus 1.x master, read from `nodescripts/<state>/{all,group/G,vnfs/V,node/N}`.

In 1.x, activating a module for a role was a symlink from the nodescripts tree into
`<state>/modules/<name>/nodescripts/`; capsule scripts were symlinks into `<state>/vnfs/<name>/`; anything
else in the tree is an admin's own script.  Module tables in the new store come later (issue 7): for now
the tree itself is carried over (the new master honours it) and the activations are recorded in the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SCOPE_KINDS = ("group", "vnfs", "node")


@dataclass(frozen=True)
class Activation:
    """One nodescripts entry: what it is (module, capsule, admin, link) and where it applies."""

    state: str
    scope: str  # all | group | vnfs | node
    scope_name: str
    script: str
    kind: str  # module | capsule | admin | link | dangling
    owner: str = ""  # module or capsule name
    target: str = ""

    @property
    def role(self) -> str:
        return f"{self.state}/{self.scope}" + (f"/{self.scope_name}" if self.scope_name else "")

    def as_dict(self) -> dict[str, str]:
        return {
            "state": self.state,
            "scope": self.scope,
            "scope_name": self.scope_name,
            "script": self.script,
            "kind": self.kind,
            "owner": self.owner,
            "role": self.role,
            "target": self.target,
        }


@dataclass
class ModuleScan:
    """Every activation plus dangling links."""

    entries: list[Activation] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)

    def modules(self) -> dict[str, list[str]]:
        """Module → sorted roles, the shape of 1.x's `.installed` files."""
        out: dict[str, set[str]] = {}
        for e in self.entries:
            if e.kind == "module":
                out.setdefault(e.owner, set()).add(e.role)
        return {m: sorted(r) for m, r in sorted(out.items())}


def classify_target(target: str) -> tuple[str, str]:
    """(kind, owner) of a symlink target by its path shape: …/modules/M/nodescripts/… or …/vnfs/V/…."""
    parts = Path(target).parts
    for i in range(len(parts) - 2):
        if parts[i] == "modules" and parts[i + 2] == "nodescripts":
            return "module", parts[i + 1]
    for i in range(len(parts) - 2):
        if parts[i] == "vnfs" and parts[i + 2] in ("nodescripts", "init"):
            return "capsule", parts[i + 1]
    return "link", ""


def _scopes(state_dir: Path) -> list[tuple[str, str, Path]]:
    out: list[tuple[str, str, Path]] = []
    if (state_dir / "all").is_dir():
        out.append(("all", "", state_dir / "all"))
    for kind in SCOPE_KINDS:
        parent = state_dir / kind
        if parent.is_dir():
            out.extend((kind, d.name, d) for d in sorted(parent.iterdir()) if d.is_dir())
    return out


def scan(old_state: Path) -> ModuleScan:
    """Read every activation from the old nodescripts tree."""
    result = ModuleScan()
    root = old_state / "nodescripts"
    modules_dir = old_state / "modules"
    if modules_dir.is_dir():
        result.installed = sorted(d.name for d in modules_dir.iterdir() if d.is_dir())
    if not root.is_dir():
        return result
    for state_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for scope, name, directory in _scopes(state_dir):
            for entry in sorted(directory.iterdir()):
                if entry.name.endswith("~") or entry.is_dir():
                    continue
                if entry.is_symlink():
                    target = os.readlink(entry)
                    kind, owner = classify_target(target)
                    if not entry.exists():
                        resolved = _rebase(target, old_state)
                        if resolved is None or not resolved.exists():
                            result.dangling.append(str(entry))
                            kind = "dangling"  # 1.x skipped it at run time; not an activation
                    result.entries.append(Activation(state_dir.name, scope, name, entry.name, kind, owner, target))
                else:
                    result.entries.append(Activation(state_dir.name, scope, name, entry.name, "admin"))
    return result


def _rebase(target: str, old_state: Path) -> Path | None:
    """Where an absolute 1.x link (…/modules/… or …/vnfs/…) points inside `old_state` (a snapshot may
    live somewhere else than /var/lib/perceus)."""
    parts = Path(target).parts
    for i, part in enumerate(parts):
        if part in ("modules", "vnfs") and i + 1 < len(parts):
            return old_state.joinpath(*parts[i:])
    return None


def retargeter(old_state: Path, new_state: Path) -> Callable[[str], str]:
    """A function re-pointing 1.x links into the new state dir (module links; capsule links if present)."""

    def retarget(target: str) -> str:
        kind, _ = classify_target(target)
        if kind == "link" or not os.path.isabs(target):
            return target
        parts = Path(target).parts
        for i, part in enumerate(parts):
            if part in ("modules", "vnfs") and i + 1 < len(parts):
                new = new_state.joinpath(*parts[i:])
                if kind == "module" or new.exists():
                    return str(new)
                old = old_state.joinpath(*parts[i:])
                return str(old)  # capsule not converted (yet): keep using the old, read-only copy
        return target

    return retarget
