"""Copy the driver modules a node needs into the image and index them with depmod."""

from __future__ import annotations

import shutil
from pathlib import Path

from perceus.stage1.drivers import dependency_closure, parse_modules_dep, wanted_modules
from perceus.stage1.kernel import KernelTree
from perceus.stage1.run import run

# Index files depmod reads as input (it regenerates the rest for the subset).
_KEEP = ("modules.order", "modules.builtin", "modules.builtin.modinfo")


def install(tree: KernelTree, root: Path) -> int:
    """Install the NIC/storage modules plus dependencies under ``root``; return how many.

    Busybox ``modprobe`` then resolves names and PCI modaliases through the
    generated modules.dep and modules.alias inside the image.
    """
    deps = parse_modules_dep((tree.modules_dir / "modules.dep").read_text())
    chosen = dependency_closure(wanted_modules(deps), deps)
    dest = root / "usr/lib/modules" / tree.release
    for rel in sorted(chosen):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tree.modules_dir / rel, target)
    for name in _KEEP:
        if (tree.modules_dir / name).exists():
            shutil.copy2(tree.modules_dir / name, dest / name)
    # depmod -b looks under ROOT/lib/modules; the image's /lib is a relative link to usr/lib.
    run(["depmod", "-b", str(root), tree.release], step="depmod")
    return len(chosen)
