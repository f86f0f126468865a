"""Stateful install (1.x ref §9.8): partition the TARGETS disk, swap + root filesystem, unpack the root stream, mark.

Where we differ from 1.x's chroot2stateful, deliberately: no GRUB and no RAID — stage one boots an installed
node by kexec'ing the capsule kernel with `root=<partition>` (Warewulf/xCAT "stateful via PXE"), so the master
stays in charge of every boot.  The MBR is written by this module (64 bytes of partition entries), not by
sfdisk/fdisk: stage one carries no partitioning tool, and a table we compute is testable without a disk.
The install marker lives in sector 1 (the MBR gap before the first, 1 MiB aligned partition), so a later boot
checks it without loading a filesystem driver or mounting anything; it is cleared first and written last, so
an interrupted install never looks valid.  Commands run through a `Runner`, replaced by a recording fake in
unit tests.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from perceus.errors import PerceusError

log = structlog.get_logger("perceus.agent.install")

SECTOR = 512
ALIGN = 2048  # sectors: 1 MiB, what every partitioning tool aligns to
MIB = 1 << 20
MARKER_OFFSET = SECTOR  # sector 1
MARKER_MAGIC = b"PERCEUS-INSTALL1\n"
MARKER_SIZE = SECTOR
ROOT_SLACK = 1.25  # the root partition must hold the unpacked stream plus a quarter (logs, packages)
ROOT_EXTRA = 64 * MIB
FILESYSTEMS = {"ext4": "mkfs.ext4", "ext3": "mkfs.ext4", "ext2": "mke2fs"}
TYPE_LINUX, TYPE_SWAP = 0x83, 0x82
BLKRRPART = 0x125F  # <linux/fs.h> _IO(0x12, 95): re-read the partition table


class InstallError(PerceusError):
    """A stateful install was refused or failed; the message is what the console shows."""

    def __init__(self, message: str, *, disk: str = "") -> None:
        self.disk = disk
        super().__init__(message)


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, stdin: Path | None = None, cwd: Path | None = None) -> None: ...


def run_command(argv: Sequence[str], *, stdin: Path | None = None, cwd: Path | None = None) -> None:
    """The real runner: one command, its stderr in the error when it fails."""
    started = time.monotonic()
    with open(stdin, "rb") if stdin is not None else open(os.devnull, "rb") as fh:
        result = subprocess.run(list(argv), stdin=fh, cwd=cwd, capture_output=True, text=True, check=False)
    log.debug("install_command", argv=" ".join(argv), rc=result.returncode,
              duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
    if result.returncode != 0:
        raise InstallError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-300:]}")


# ------------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Settings:
    """The stateful keys of the capsule config (1.x ref §2.7) as the manifest carries them."""

    targets: tuple[str, ...]
    filesystem: str = "ext4"
    swap_mib: int = 0
    boot_mib: int = 0

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Settings:
        targets = tuple(str(raw.get("targets", "")).split())
        if not targets:
            raise InstallError("stateful capsule names no TARGETS disk")
        for t in targets:
            name = t.removeprefix("/dev/")
            if not name or "/" in name or name.startswith("."):
                raise InstallError(f"TARGETS entry {t!r} is not a disk under /dev")
        fs = str(raw.get("filesystem") or "ext4")
        if fs not in FILESYSTEMS:
            raise InstallError(f"FILESYSTEM {fs!r} is not supported (one of {', '.join(sorted(FILESYSTEMS))})")
        return cls(targets, fs, _mib(raw.get("swap_size"), "SWAP_SIZE"), _mib(raw.get("boot_size"), "BOOT_SIZE"))


def _mib(value: object, key: str) -> int:
    """1.x sizes are MB; an optional M/G suffix is accepted."""
    text = str(value or "0").strip().upper().removesuffix("B")
    scale = 1024 if text.endswith("G") else 1
    text = text.removesuffix("G").removesuffix("M")
    if not text.isdigit():
        raise InstallError(f"{key} {value!r} is not a size in MB")
    return int(text) * scale


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # sectors
    sectors: int
    type_id: int
    role: str  # "boot" | "swap" | "root"


@dataclass(frozen=True)
class Plan:
    disk: str  # kernel name: vda, sda, nvme0n1
    disk_sectors: int
    filesystem: str
    partitions: tuple[Partition, ...]

    def device(self, role: str) -> str:
        part = next(p for p in self.partitions if p.role == role)
        return partition_device(self.disk, part.number)

    def has(self, role: str) -> bool:
        return any(p.role == role for p in self.partitions)


def partition_device(disk: str, number: int) -> str:
    """`/dev/vda2`, but `/dev/nvme0n1p2` when the disk name ends in a digit (the kernel's rule)."""
    return f"/dev/{disk}{'p' if disk[-1].isdigit() else ''}{number}"


def make_plan(settings: Settings, disks: Mapping[str, int], root_bytes: int) -> Plan:
    """Partitions for the first TARGETS disk; refuses a missing or too small disk, or RAID (several targets)."""
    if len(settings.targets) > 1:
        raise InstallError(f"TARGETS names {len(settings.targets)} disks: RAID installs are not supported")
    disk = settings.targets[0].removeprefix("/dev/")
    if disk not in disks:
        found = ", ".join(sorted(disks)) or "none"
        raise InstallError(f"TARGETS disk /dev/{disk} is not present (disks found: {found})", disk=disk)
    total = disks[disk]
    parts: list[Partition] = []
    start = ALIGN
    for role, mib, type_id in (("boot", settings.boot_mib, TYPE_LINUX), ("swap", settings.swap_mib, TYPE_SWAP)):
        if mib:
            sectors = mib * MIB // SECTOR
            parts.append(Partition(len(parts) + 1, start, sectors, type_id, role))
            start += sectors
    usable = (total - start) // ALIGN * ALIGN
    need = int(root_bytes * ROOT_SLACK + ROOT_EXTRA) // SECTOR
    if total > 0xFFFFFFFF:
        raise InstallError(f"/dev/{disk} is larger than 2 TiB: an MBR cannot describe it", disk=disk)
    if usable < need:
        raise InstallError(
            f"/dev/{disk} is too small: {total * SECTOR // MIB} MiB, the layout needs "
            f"{(start + need) * SECTOR // MIB} MiB",
            disk=disk,
        )
    parts.append(Partition(len(parts) + 1, start, usable, TYPE_LINUX, "root"))
    return Plan(disk, total, settings.filesystem, tuple(parts))


def mbr_entries(plan: Plan) -> bytes:
    """Bytes 446..511 of the MBR: four 16-byte entries (LBA only, CHS set to the 'too large' value) + 55AA."""
    out = bytearray()
    for part in plan.partitions:
        chs = b"\xfe\xff\xff"
        out += bytes([0x80 if part.role == "root" else 0]) + chs + bytes([part.type_id]) + chs
        out += part.start.to_bytes(4, "little") + part.sectors.to_bytes(4, "little")
    out += bytes(16 * (4 - len(plan.partitions)))
    return bytes(out) + b"\x55\xaa"


# ------------------------------------------------------------------------------------------------ the marker


@dataclass(frozen=True)
class Marker:
    manifest_hash: str
    capsule: str
    installed: float
    root: str

    def encode(self) -> bytes:
        body = json.dumps(self.__dict__, sort_keys=True).encode()
        data = MARKER_MAGIC + body + b"\n"
        if len(data) > MARKER_SIZE:
            raise InstallError("install marker does not fit its sector")
        return data.ljust(MARKER_SIZE, b"\0")


def parse_marker(data: bytes) -> Marker | None:
    """The marker in `data` (sector 1 of the disk), or None for anything else (zeros, other tools' bytes)."""
    if not data.startswith(MARKER_MAGIC):
        return None
    body = data[len(MARKER_MAGIC) :].split(b"\n", 1)[0]
    try:
        raw = json.loads(body)
        marker = Marker(str(raw["manifest_hash"]), str(raw["capsule"]), float(raw["installed"]), str(raw["root"]))
    except (ValueError, KeyError, TypeError):
        return None
    return marker


def read_marker(disk: str, dev: Path = Path("/dev")) -> Marker | None:
    try:
        with open(dev / disk, "rb") as fh:
            fh.seek(MARKER_OFFSET)
            return parse_marker(fh.read(MARKER_SIZE))
    except OSError:
        return None


def _write_at(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ doing it


def block_disks(sys_block: Path = Path("/sys/block")) -> dict[str, int]:
    """Whole disks and their size in 512-byte sectors (loop/ram/zram devices are never install targets)."""
    out: dict[str, int] = {}
    if not sys_block.is_dir():
        return out
    for entry in sys_block.iterdir():
        if entry.name.startswith(("loop", "ram", "zram", "dm-", "md", "sr")):
            continue
        try:
            out[entry.name] = int((entry / "size").read_text().strip())
        except (OSError, ValueError):
            continue
    return out


def wants_install(settings: Settings, manifest_hash: str, flags_dir: Path, dev: Path = Path("/dev")) -> bool:
    """Install unless the disk carries a marker for this very manifest and the master did not ask (INIT=yes)."""
    try:
        flag = (flags_dir / "stateful").read_text()
    except OSError:
        flag = ""
    if "INIT=yes" in flag.split():
        return True
    marker = read_marker(settings.targets[0].removeprefix("/dev/"), dev)
    return marker is None or marker.manifest_hash != manifest_hash


def installed_root(settings: Settings, dev: Path = Path("/dev")) -> str:
    marker = read_marker(settings.targets[0].removeprefix("/dev/"), dev)
    if marker is None:
        raise InstallError("no install marker on the target disk")
    return marker.root


def _wait_for(path: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise InstallError(f"{path} did not appear after re-reading the partition table")
        time.sleep(0.05)


def install(
    plan: Plan,
    rootfs_cpio: Path,
    *,
    manifest_hash: str,
    capsule: str,
    mountpoint: Path,
    run: Runner = run_command,
    dev: Path = Path("/dev"),
    load_fs: Callable[[str], None] = lambda fs: None,
    clock: Callable[[], float] = time.time,
) -> Marker:
    """Write `plan` to the disk and unpack the verified root stream; returns the marker written last."""
    disk = dev / plan.disk
    started = time.monotonic()
    log.info("install_started", disk=str(disk), filesystem=plan.filesystem,
             partitions=" ".join(f"{p.role}:{p.sectors * SECTOR // MIB}MiB" for p in plan.partitions))  # fmt: skip
    _write_at(disk, MARKER_OFFSET, bytes(MARKER_SIZE))  # an interrupted install must not look installed
    mbr = bytearray(SECTOR)
    mbr[440:444] = os.urandom(4)  # disk signature
    mbr[446:] = mbr_entries(plan)
    _write_at(disk, 0, bytes(mbr))
    _reread(disk)
    root = dev / Path(plan.device("root")).name
    for part in plan.partitions:
        _wait_for(dev / Path(partition_device(plan.disk, part.number)).name)
    if plan.has("swap"):
        run(["mkswap", "-L", "swap", str(dev / Path(plan.device("swap")).name)])
    mkfs = FILESYSTEMS[plan.filesystem]
    fs_args = ["-t", plan.filesystem] if mkfs != "mke2fs" else []
    run([mkfs, "-F", "-q", *fs_args, "-L", "root", str(root)])
    load_fs(plan.filesystem)
    mountpoint.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", plan.filesystem, str(root), str(mountpoint)])
    try:
        run(["cpio", "-i", "-d", "-m", "-u"], stdin=rootfs_cpio, cwd=mountpoint)
    finally:
        run(["umount", str(mountpoint)])
    os.sync()
    marker = Marker(manifest_hash, capsule, clock(), plan.device("root"))
    _write_at(disk, MARKER_OFFSET, marker.encode())
    log.info("install_done", disk=str(disk), root=marker.root, bytes=rootfs_cpio.stat().st_size,
             duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
    return marker


def _reread(disk: Path) -> None:
    fd = os.open(disk, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for _ in range(20):  # EBUSY right after our own write is common: udev-less, but the cache is settling
            try:
                fcntl.ioctl(fd, BLKRRPART)
                return
            except OSError as exc:
                last = exc
                time.sleep(0.1)
        raise InstallError(f"re-reading the partition table of {disk} failed: {last.strerror}")
    finally:
        os.close(fd)


def boot_args(root: str, filesystem: str) -> list[str]:
    """Kernel words for booting the installed root (stage one appends them to the capsule's own)."""
    return [f"root={root}", "rw", f"rootfstype={filesystem}"]
