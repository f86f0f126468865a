"""Carry a directory tree (nodescripts, modules, module config) from the old master to the new one.

Planned first, applied later; never overwrites: an entry that already exists and is identical is left alone
(idempotent re-runs), one that differs is reported as a conflict and kept.  Each file or symlink is created
under a temporary name and renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Retarget = Callable[[str], str]


@dataclass(frozen=True)
class Op:
    """Create one entry: kind is dir | file | link."""

    kind: str
    src: Path
    dst: Path
    link: str = ""


@dataclass
class TreePlan:
    """Entries to create and what was found already there."""

    name: str
    src: Path
    dst: Path
    ops: list[Op] = field(default_factory=list)
    in_place: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "tree": self.name,
            "from": str(self.src),
            "to": str(self.dst),
            "in_place": self.in_place,
            "entries": len(self.ops),
        }


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def plan_tree(name: str, src: Path, dst: Path, retarget: Retarget | None = None) -> TreePlan:
    """Every entry under `src` as an op creating it under `dst` (symlinks re-pointed by `retarget`)."""
    plan = TreePlan(name, src, dst)
    if not src.is_dir():
        return plan
    if _same_dir(src, dst):
        plan.in_place = True
        return plan
    for root, dirs, files in os.walk(src, followlinks=False):
        rel = Path(root).relative_to(src)
        for d in sorted(dirs):
            path = Path(root) / d
            if path.is_symlink():
                target = os.readlink(path)
                plan.ops.append(Op("link", path, dst / rel / d, retarget(target) if retarget else target))
            else:
                plan.ops.append(Op("dir", path, dst / rel / d))
        for f in sorted(files):
            path = Path(root) / f
            if path.is_symlink():
                target = os.readlink(path)
                plan.ops.append(Op("link", path, dst / rel / f, retarget(target) if retarget else target))
            elif path.is_file():
                plan.ops.append(Op("file", path, dst / rel / f))
    return plan


def _identical(op: Op) -> bool:
    if op.kind == "dir":
        return op.dst.is_dir() and not op.dst.is_symlink()
    if op.kind == "link":
        return op.dst.is_symlink() and os.readlink(op.dst) == op.link
    if op.dst.is_symlink() or not op.dst.is_file():
        return False
    if op.dst.stat().st_size != op.src.stat().st_size:
        return False
    return op.dst.read_bytes() == op.src.read_bytes()


def apply_tree(plan: TreePlan) -> tuple[int, int, list[str]]:
    """Create what is missing: (created, unchanged, conflicts)."""
    created = unchanged = 0
    conflicts: list[str] = []
    if plan.ops:
        plan.dst.mkdir(parents=True, exist_ok=True)
    for op in plan.ops:
        if op.dst.exists() or op.dst.is_symlink():
            if _identical(op):
                unchanged += 1
            else:
                conflicts.append(str(op.dst))
            continue
        op.dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = op.dst.with_name(f".{op.dst.name}.perceus1-tmp")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        if op.kind == "dir":
            op.dst.mkdir()
            shutil.copystat(op.src, op.dst)
        elif op.kind == "link":
            os.symlink(op.link, tmp)
            os.replace(tmp, op.dst)
        else:
            shutil.copy2(op.src, tmp)  # keeps the mode: executable generators stay executable
            os.replace(tmp, op.dst)
        created += 1
    return created, unchanged, conflicts
