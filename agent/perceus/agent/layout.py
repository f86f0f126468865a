"""Stateful disk layouts: the capsule's stateful keys, the partition plan, and the sfdisk script for it.

Pure planning, no I/O, so every size rule and refusal is unit-tested (install.py carries the plan out).

- LAYOUT auto|gpt|mbr: auto is GPT with an EFI system partition (ESP) on a UEFI node (/sys/firmware/efi) and
  MBR on a BIOS node.  MBR cannot describe a disk past 2 TiB (32-bit sector numbers).
- RAID none|raid1: raid1 mirrors the root partition of the two TARGETS disks with mdadm (metadata 1.2, the
  superblock 4 KiB into each member); each disk gets the same table, its own ESP copy and its own swap.
- FILESYSTEM ext4|ext3|ext2|xfs (mkfs.xfs of xfsprogs >= 5.19 refuses a filesystem under 300 MB).
- BOOTLOADER auto|systemd-boot|none: auto is systemd-boot on UEFI (from the capsule, copied to the ESP's
  removable-media path) and none on BIOS (stage one then kexecs the disk on every boot, as before).
- SWAP_SIZE, BOOT_SIZE in MB (M/G suffix accepted); BOOT_SIZE is the ESP's size where there is one.

An ESP exists on GPT, and on MBR when there is RAID or a boot loader (MBR type 0xEF): it holds the disk-boot
kernel and initrd (disk_initrd.py) that both systemd-boot and stage one boot the installed root with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceus.errors import PerceusError

SECTOR = 512
ALIGN = 2048  # sectors: 1 MiB, what every partitioning tool aligns to
MIB = 1 << 20
GPT_BACKUP = 33  # sectors at the end of a GPT disk: 32 of partition entries + the backup header
ROOT_SLACK = 1.25  # the root partition must hold the unpacked stream plus a quarter (logs, packages)
ROOT_EXTRA = 64 * MIB
ESP_DEFAULT_MIB = 256
ESP_MIN_MIB = 64  # mkfs.fat -F 32 needs 65525 clusters (~33 MiB at 512-byte clusters); room for two kernels
XFS_MIN_MIB = 300  # xfsprogs 5.19+: "Filesystem must be larger than 300MB"
MBR_MAX_SECTORS = 0xFFFFFFFF
FILESYSTEMS = {"ext4": "mkfs.ext4", "ext3": "mkfs.ext4", "ext2": "mke2fs", "xfs": "mkfs.xfs"}
LAYOUTS = ("auto", "gpt", "mbr")
BOOTLOADERS = ("auto", "systemd-boot", "none")
RAID_VALUES = {"": "none", "none": "none", "no": "none", "0": "none", "raid1": "raid1", "1": "raid1"}
MD_DEVICE = "/dev/md0"
# Partition types (sfdisk's `type=`): GPT GUIDs from the UEFI spec / Discoverable Partitions list, MBR ids.
# md members with metadata 1.x take 0xDA (non-FS data) on MBR, not 0xFD (kernel autodetect, 0.90 only).
GPT_TYPES = {
    "esp": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "swap": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
    "root": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "raid": "A19D880F-05FC-4D3B-A006-743F0F84911E",
    "boot": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
}
MBR_TYPES = {"esp": "ef", "swap": "82", "root": "83", "raid": "da", "boot": "83"}
EFI_DIR = Path("/sys/firmware/efi")


class InstallError(PerceusError):
    """A stateful install was refused or failed; the message is what the console shows."""

    def __init__(self, message: str, *, disk: str = "") -> None:
        self.disk = disk
        super().__init__(message)


def booted_uefi(efi_dir: Path = EFI_DIR) -> bool:
    """The kernel exposes /sys/firmware/efi only when UEFI firmware started it (EFI stub)."""
    return efi_dir.is_dir()


@dataclass(frozen=True)
class Settings:
    """The stateful keys of the capsule config (1.x ref §2.7, plus LAYOUT and BOOTLOADER) from the manifest."""

    targets: tuple[str, ...]
    filesystem: str = "ext4"
    swap_mib: int = 0
    boot_mib: int = 0
    layout: str = "auto"
    raid: str = "none"
    bootloader: str = "auto"

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
        layout = _choice(raw, "layout", LAYOUTS)
        bootloader = _choice(raw, "bootloader", BOOTLOADERS)
        raid_text = str(raw.get("raid") or "").strip().lower()
        if raid_text not in RAID_VALUES:
            raise InstallError(f"RAID {raw.get('raid')!r} is not supported (none or raid1)")
        raid = RAID_VALUES[raid_text]
        want = 2 if raid == "raid1" else 1
        if len(targets) != want:
            what = "RAID=raid1 mirrors exactly two" if raid == "raid1" else "without RAID, TARGETS names one"
            raise InstallError(f"TARGETS names {len(targets)} disk(s): {what} (set RAID=raid1 for two)")
        if len({t.removeprefix("/dev/") for t in targets}) != len(targets):
            raise InstallError(f"TARGETS names the same disk twice: {' '.join(targets)}")
        return cls(targets, fs, _mib(raw.get("swap_size"), "SWAP_SIZE"), _mib(raw.get("boot_size"), "BOOT_SIZE"),
                   layout, raid, bootloader)  # fmt: skip

    @property
    def disks(self) -> tuple[str, ...]:
        return tuple(t.removeprefix("/dev/") for t in self.targets)


def _choice(raw: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = str(raw.get(key) or "auto").strip().lower()
    if value not in allowed:
        raise InstallError(f"{key.upper()} {raw.get(key)!r} is not supported (one of {'|'.join(allowed)})")
    return value


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
    role: str  # "esp" | "boot" | "swap" | "root" | "raid" (a root md member)

    @property
    def mib(self) -> int:
        return self.sectors * SECTOR // MIB


@dataclass(frozen=True)
class Plan:
    """The same partition table on every disk; root is the md mirror of the `raid` partitions with RAID."""

    disks: tuple[str, ...]  # kernel names: vda, sda, nvme0n1
    disk_sectors: int  # of the smallest disk
    label: str  # sfdisk label: "gpt" | "dos"
    filesystem: str
    partitions: tuple[Partition, ...]
    bootloader: str  # "systemd-boot" | "none"
    uefi: bool

    @property
    def disk(self) -> str:
        return self.disks[0]

    @property
    def raid(self) -> bool:
        return self.has("raid")

    def has(self, role: str) -> bool:
        return any(p.role == role for p in self.partitions)

    def part(self, role: str) -> Partition:
        return next(p for p in self.partitions if p.role == role)

    def devices(self, role: str) -> list[str]:
        """That partition on every disk."""
        return [partition_device(d, self.part(role).number) for d in self.disks]

    def device(self, role: str) -> str:
        """The first disk's partition; `root` is the md device under RAID."""
        if role == "root" and self.raid:
            return MD_DEVICE
        return self.devices(role)[0]

    def summary(self) -> str:
        return " ".join(f"{p.role}:{p.mib}MiB" for p in self.partitions)


def partition_device(disk: str, number: int) -> str:
    """`/dev/vda2`, but `/dev/nvme0n1p2` when the disk name ends in a digit (the kernel's rule)."""
    return f"/dev/{disk}{'p' if disk[-1].isdigit() else ''}{number}"


def make_plan(settings: Settings, disks: Mapping[str, int], root_bytes: int, *, uefi: bool | None = None) -> Plan:
    """Partitions for the TARGETS disks; refuses missing or too small disks and impossible combinations."""
    uefi = booted_uefi() if uefi is None else uefi
    label = {"gpt": "gpt", "mbr": "dos"}.get(settings.layout, "gpt" if uefi else "dos")
    bootloader = settings.bootloader if settings.bootloader != "auto" else ("systemd-boot" if uefi else "none")
    if bootloader == "systemd-boot" and not uefi:
        raise InstallError("BOOTLOADER systemd-boot needs UEFI firmware; this node booted from BIOS")
    raid = settings.raid == "raid1"
    for disk in settings.disks:
        if disk not in disks:
            found = ", ".join(sorted(disks)) or "none"
            raise InstallError(f"TARGETS disk /dev/{disk} is not present (disks found: {found})", disk=disk)
    smallest = min(settings.disks, key=lambda d: disks[d])
    total = disks[smallest]
    if label == "dos" and max(disks[d] for d in settings.disks) > MBR_MAX_SECTORS:
        raise InstallError(f"/dev/{smallest} is larger than 2 TiB: an MBR cannot describe it (LAYOUT=gpt)")
    esp = label == "gpt" or raid or bootloader != "none"
    first: list[tuple[str, int]] = []
    if esp:
        esp_mib = settings.boot_mib or ESP_DEFAULT_MIB
        if esp_mib < ESP_MIN_MIB:
            raise InstallError(f"BOOT_SIZE {esp_mib} MB is too small for the EFI system partition "
                               f"(at least {ESP_MIN_MIB} MB: FAT32, a kernel and its initrd)")  # fmt: skip
        first.append(("esp", esp_mib))
    elif settings.boot_mib:
        first.append(("boot", settings.boot_mib))  # reserved, unformatted (1.x BOOT_SIZE without a loader)
    if settings.swap_mib:
        first.append(("swap", settings.swap_mib))
    parts: list[Partition] = []
    start = ALIGN
    for role, mib in first:
        sectors = mib * MIB // SECTOR
        parts.append(Partition(len(parts) + 1, start, sectors, role))
        start += sectors
    end = total - (GPT_BACKUP + 1 if label == "gpt" else 0)
    usable = (end - start) // ALIGN * ALIGN
    need = int(root_bytes * ROOT_SLACK + ROOT_EXTRA) // SECTOR
    if settings.filesystem == "xfs":
        need = max(need, XFS_MIN_MIB * MIB // SECTOR)
    if usable < need:
        which = "the smaller of the RAID disks" if raid else "the disk"
        raise InstallError(
            f"/dev/{smallest} is too small: {total * SECTOR // MIB} MiB, the layout needs "
            f"{(start + need) * SECTOR // MIB + (1 if label == 'gpt' else 0)} MiB ({which}; "
            f"root {need * SECTOR // MIB} MiB for a {root_bytes // MIB} MiB root stream on {settings.filesystem})",
            disk=smallest,
        )
    parts.append(Partition(len(parts) + 1, start, usable, "raid" if raid else "root"))
    return Plan(settings.disks, total, label, settings.filesystem, tuple(parts), bootloader, uefi)


def sfdisk_script(plan: Plan) -> str:
    """The sfdisk input (sfdisk(8) "Input format") that writes `plan` to one disk."""
    lines = [f"label: {plan.label}", "unit: sectors", ""]
    for p in plan.partitions:
        if plan.label == "gpt":
            extra = f', type={GPT_TYPES[p.role]}, name="{p.role}"'
        else:
            extra = f", type={MBR_TYPES[p.role]}" + (", bootable" if p.role in ("root", "esp") else "")
        lines.append(f"start={p.start}, size={p.sectors}{extra}")
    return "\n".join(lines) + "\n"


def kernel_modules(plan: Plan) -> list[str]:
    """What a kernel needs to assemble and mount the installed root (stage one here, the disk initrd later)."""
    mods = ["crc32c_generic"]  # ext4 and xfs (through libcrc32c) ask for crc32c at mount; modules.dep omits it
    mods.append("xfs" if plan.filesystem == "xfs" else "ext4")
    if plan.raid:
        mods += ["md_mod", "raid1"]
    return mods


# mount -t vfat: Debian's FAT_DEFAULT_CODEPAGE=437 and FAT_DEFAULT_IOCHARSET="ascii" (without it: EINVAL)
ESP_MODULES = ("vfat", "nls_cp437", "nls_ascii", "nls_utf8")


def md_uuid_text(uuid_hex: str) -> str:
    """mdadm's UUID notation: 32 hex digits as four colon-separated groups of eight."""
    h = uuid_hex.replace("-", "").lower()
    if len(h) != 32 or any(c not in "0123456789abcdef" for c in h):
        raise ValueError(f"not a 128-bit hex UUID: {uuid_hex!r}")
    return ":".join(h[i : i + 8] for i in range(0, 32, 8))
