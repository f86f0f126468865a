"""Which kernel modules a node needs (NICs, storage) and their dependency closure.

This is the one list of driver modules; capsule builders reuse it so the stage-one
initramfs and a runtime initramfs always carry the same network drivers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

# Directories (relative to /lib/modules/<version>/) whose every .ko is shipped.
# The Debian kernel builds no NIC driver in, so everything a node may boot from
# must travel in the initramfs.  PHY drivers are included because several MAC
# drivers (r8169, stmmac, ...) refuse to bind without their PHY module.
NIC_MODULE_DIRS: tuple[str, ...] = (
    "kernel/drivers/net/ethernet",
    "kernel/drivers/net/phy",
    "kernel/drivers/net/mdio",
    "kernel/drivers/net/pcs",
    "kernel/drivers/net/vmxnet3",
    "kernel/drivers/net/hyperv",
)

# NIC modules outside those directories.  virtio_pci is the transport virtio_net
# sits on; modules.dep does not list it, so it must be named.
NIC_MODULES: tuple[str, ...] = ("virtio_net", "virtio_pci", "xen-netfront")

# Block devices a node may install to or keep scratch space on.
STORAGE_MODULES: tuple[str, ...] = ("virtio_blk", "virtio_scsi", "sd_mod", "ahci", "nvme")

# The root filesystem of a stateful install (ext4 also mounts ext2/ext3).  ext4 asks the crypto API for
# crc32c at mount time, which modules.dep does not list: crc32c_generic must be named.
FS_MODULES: tuple[str, ...] = ("ext4", "crc32c_generic")
# Stateful layouts beyond one ext4 disk (agent/perceus/agent/layout.py): an xfs root, the md mirror of RAID1, and
# the EFI system partition (vfat: Debian's FAT defaults are codepage 437 and iocharset ascii, else EINVAL).
LAYOUT_MODULES: tuple[str, ...] = ("xfs", "md_mod", "raid1", "vfat", "nls_cp437", "nls_ascii", "nls_utf8")

# Entropy for early TLS/ZMQ curve keys on virtual machines.
MISC_MODULES: tuple[str, ...] = ("virtio_rng",)

# The node's own BMC through the kernel's IPMI device (the agent's bmc_self.py loads them only where the
# firmware declares one); ipmi_msghandler comes as their dependency.
BMC_MODULES: tuple[str, ...] = ("ipmi_si", "ipmi_devintf")

# The kernel's NFSv4 client for hybrid capsules (agent/perceus/agent/hybrid_mount.py): when the image is the
# runtime capsule, provisiond mounts the hybridized directories with it; sunrpc, nfs, lockd, grace, fscache,
# netfs and dns_resolver come as its dependencies.
NFS_MODULES: tuple[str, ...] = ("nfsv4",)


def module_name(path: str) -> str:
    """Return the kernel's name for a module file: basename, no .ko, '-' as '_'."""
    name = PurePosixPath(path).name
    for suffix in (".ko.zst", ".ko.xz", ".ko.gz", ".ko"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, tuple[str, ...]]:
    """Parse depmod's modules.dep: ``path: dep dep ...`` into path -> deps."""
    deps: dict[str, tuple[str, ...]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, sep, rest = line.partition(":")
        if not sep:
            raise ValueError(f"modules.dep line without ':': {raw!r}")
        deps[path.strip()] = tuple(rest.split())
    return deps


def wanted_modules(
    all_paths: Iterable[str],
    *,
    dirs: Iterable[str] = NIC_MODULE_DIRS,
    names: Iterable[str] = (
        NIC_MODULES + STORAGE_MODULES + FS_MODULES + LAYOUT_MODULES + MISC_MODULES + BMC_MODULES + NFS_MODULES
    ),
) -> set[str]:
    """Pick the module paths under ``dirs`` or named in ``names`` (missing names are ignored).

    Names absent from a kernel are skipped rather than fatal: a module may be
    built in (=y) in another kernel configuration, which is just as good.
    """
    prefixes = tuple(d.rstrip("/") + "/" for d in dirs)
    want_names = {n.replace("-", "_") for n in names}
    return {p for p in all_paths if p.startswith(prefixes) or module_name(p) in want_names}


def dependency_closure(roots: Iterable[str], deps: Mapping[str, Iterable[str]]) -> set[str]:
    """Return ``roots`` plus every module they need, transitively.

    modules.dep already lists transitive dependencies, but a hand-written or
    partial file may not, so walk the graph instead of trusting it.
    """
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        if path not in deps:
            raise KeyError(f"module not in modules.dep: {path}")
        seen.add(path)
        stack.extend(d for d in deps[path] if d not in seen)
    return seen


def load_order(path: str, deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Return the insmod order for ``path``: dependencies first, the module last."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(p: str) -> None:
        if p in order:
            return
        if p in visiting:
            raise ValueError(f"module dependency cycle at {p}")
        visiting.add(p)
        # modules.dep lists dependencies nearest-first; walk them in reverse so the
        # deepest (e.g. virtio_ring before virtio) comes out first.
        for dep in reversed(list(deps.get(p, ()))):
            visit(dep)
        visiting.discard(p)
        order.append(p)

    visit(path)
    return order
