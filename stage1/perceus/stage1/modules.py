"""Copy the driver modules a node needs into the image, xz-compressed, and index them with depmod.

Compressed because every byte of the unpacked image is paid for several times per boot: the kernel unpacks the
initramfs, and when the image is also the runtime capsule (the demo's) its raw bytes are fetched, written,
hashed by kexec_file_load, hashed again by the kexec purgatory and unpacked once more — under QEMU TCG ~0.1 s
per MB in all.  Debian ships its 6.1 modules uncompressed (45 MB for the NIC set, 206 modules); as `.ko.xz`
(kmod's format: CRC32 check, 1 MiB dictionary) they are ~12 MB.  A node loads only the handful its devices
match, decompressing them itself where the kernel cannot (agent/perceus/agent/drivers.py).
"""

from __future__ import annotations

import lzma
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from perceus.stage1.drivers import dependency_closure, parse_modules_dep, wanted_modules
from perceus.stage1.kernel import KernelTree
from perceus.stage1.run import BuildError, run

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
    jobs = []
    for rel in sorted(chosen):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".ko":
            jobs.append((tree.modules_dir / rel, target.with_name(target.name + ".xz")))
        else:  # already compressed by the distribution
            shutil.copy2(tree.modules_dir / rel, target)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # lzma releases the GIL
        for _ in pool.map(lambda job: compress_module(*job), jobs):
            pass
    for name in _KEEP:
        if (tree.modules_dir / name).exists():
            shutil.copy2(tree.modules_dir / name, dest / name)
    # depmod -b looks under ROOT/lib/modules; the image's /lib is a relative link to usr/lib.
    run(["depmod", "-b", str(root), tree.release], step="depmod")
    if chosen and "alias " not in (dest / "modules.alias").read_text():
        raise BuildError("depmod", "modules.alias is empty: this host's depmod cannot read .ko.xz (kmod without XZ)")
    return len(chosen)


# kmod's own settings for .ko.xz (and what CONFIG_MODULE_DECOMPRESS kernels accept): CRC32, 1 MiB dictionary.
_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]


def compress_module(src: Path, dest: Path) -> None:
    """Write ``src`` as ``dest`` (.ko.xz), keeping its timestamps."""
    data = lzma.compress(src.read_bytes(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=_XZ_FILTERS)
    dest.write_bytes(data)
    shutil.copystat(src, dest)
