"""Locate the node-side part of the ``perceus`` namespace (agent/perceus) and copy it into the image."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from perceus.stage1.run import BuildError

SITE = "usr/lib/python3/dist-packages"  # on Debian python's default sys.path
# Master-side subpackages.  A checkout keeps them out of agent/perceus already, but an
# installed wheel merges every portion into one perceus/ directory.
NOT_NODE_SIDE = frozenset({"master", "stage1", "importers"})


def source_dir() -> Path:
    """The namespace portion holding perceus/errors.py and perceus/protocol (agent/perceus in a checkout).

    Found through the import system so it works from a checkout and from an
    installed wheel alike.
    """
    spec = importlib.util.find_spec("perceus")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location)
        if (candidate / "errors.py").is_file() and (candidate / "protocol").is_dir():
            return candidate
    raise BuildError("agent source", "no perceus namespace portion with errors.py and protocol/ found")


def source_files(src: Path) -> list[Path]:
    """Every node-side file under ``src``, relative, sorted; bytecode caches and master code excluded."""
    files = (p.relative_to(src) for p in src.rglob("*") if p.is_file())
    return sorted(
        rel
        for rel in files
        if rel.parts[0] not in NOT_NODE_SIDE and "__pycache__" not in rel.parts and rel.suffix not in (".pyc", ".pyo")
    )


def install(root: Path, src: Path) -> int:
    """Copy the agent portion into the image's site directory; return the file count.

    Sources stay next to their unchecked-hash pycs so tracebacks on a node's
    console show code lines.
    """
    dest = root / SITE / "perceus"
    files = source_files(src)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    return len(files)
