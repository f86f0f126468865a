"""Stateful install (1.x ref §9.8): partition the TARGETS disks, RAID1, swap, root filesystem, unpack, boot files, mark.

The plan (GPT or MBR, ESP, swap, root, RAID1) comes from layout.py; this module carries it out with the real
tools in stage one: sfdisk (one script for both labels), mdadm (metadata 1.2), mkswap, mkfs.fat, mkfs.ext4 or
mkfs.xfs, busybox cpio.  Where a plan has an ESP it receives the capsule kernel and the generated disk-boot initrd
(disk_initrd.py) under \\perceus\\, and with BOOTLOADER systemd-boot the capsule's systemd-bootx64.efi as
\\EFI\\BOOT\\BOOTX64.EFI (the removable-media path every UEFI firmware tries, so no NVRAM entry is needed) with
a loader entry: the node then boots its disk when the master is down.  Why systemd-boot and not GRUB: it reads
a kernel, an initrd and one options line from the FAT ESP and needs no install step (no core image, no
grub-install, no device map), so stage one installs it by copying a file; GRUB for BIOS nodes is not done.

The install marker (manifest hash, capsule, time, root, ESP) lives in sector 2047, the last sector before the
first 1 MiB aligned partition (past GPT's header and entries in sectors 1-33), on every TARGETS disk, so a later
boot checks it without a filesystem driver.  Both it and the 1.x-era location (sector 1) are cleared first and
it is written last, after the array is stopped and everything synced: an interrupted install never looks valid.
Commands run through a `Runner`, replaced by a recording fake in unit tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from perceus.agent import disk_initrd, layout
from perceus.agent.layout import (
    ESP_MODULES,
    FILESYSTEMS,
    SECTOR,
    InstallError,
    Plan,
    Settings,
    make_plan,
    partition_device,
)

log = structlog.get_logger("perceus.agent.install")

MARKER_OFFSET = 2047 * SECTOR  # the last sector before the first partition (2048)
LEGACY_MARKER_OFFSET = SECTOR  # sector 1: MBR installs before GPT support
MARKER_MAGIC = b"PERCEUS-INSTALL1\n"
MARKER_SIZE = SECTOR
# Where a capsule (Debian systemd-boot-efi, merged /usr or not) carries systemd-boot, as cpio names.
SYSTEMD_BOOT = ("usr/lib/systemd/boot/efi/systemd-bootx64.efi", "lib/systemd/boot/efi/systemd-bootx64.efi")
ESP_DIR = "perceus"  # \perceus\vmlinuz, \perceus\initrd.img on the ESP
ESP_KERNEL, ESP_INITRD, ESP_CMDLINE = f"{ESP_DIR}/vmlinuz", f"{ESP_DIR}/initrd.img", f"{ESP_DIR}/cmdline"

__all__ = ["InstallError", "Plan", "Settings", "block_disks", "boot_args", "install", "installed_root",
           "make_plan", "partition_device", "read_marker", "wants_install"]  # fmt: skip


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


# ------------------------------------------------------------------------------------------------ the marker


@dataclass(frozen=True)
class Marker:
    manifest_hash: str
    capsule: str
    installed: float
    root: str
    esp: str = ""  # the ESP holding the disk-boot kernel and initrd ("" when the plan has none)
    filesystem: str = ""

    def encode(self) -> bytes:
        body = json.dumps(self.__dict__, sort_keys=True).encode()
        data = MARKER_MAGIC + body + b"\n"
        if len(data) > MARKER_SIZE:
            raise InstallError("install marker does not fit its sector")
        return data.ljust(MARKER_SIZE, b"\0")


def parse_marker(data: bytes) -> Marker | None:
    """The marker in `data` (one sector), or None for anything else (zeros, a GPT header, other tools' bytes)."""
    if not data.startswith(MARKER_MAGIC):
        return None
    body = data[len(MARKER_MAGIC) :].split(b"\n", 1)[0]
    try:
        raw = json.loads(body)
        marker = Marker(str(raw["manifest_hash"]), str(raw["capsule"]), float(raw["installed"]), str(raw["root"]),
                        str(raw.get("esp", "")), str(raw.get("filesystem", "")))  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return marker


def read_marker(disk: str, dev: Path = Path("/dev")) -> Marker | None:
    try:
        with open(dev / disk, "rb") as fh:
            for offset in (MARKER_OFFSET, LEGACY_MARKER_OFFSET):
                fh.seek(offset)
                marker = parse_marker(fh.read(MARKER_SIZE))
                if marker is not None:
                    return marker
    except OSError:
        return None
    return None


def _write_at(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ checks


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
    marker = read_marker(settings.disks[0], dev)
    return marker is None or marker.manifest_hash != manifest_hash


def installed_marker(settings: Settings, dev: Path = Path("/dev")) -> Marker:
    marker = read_marker(settings.disks[0], dev)
    if marker is None:
        raise InstallError("no install marker on the target disk")
    return marker


def installed_root(settings: Settings, dev: Path = Path("/dev")) -> str:
    return installed_marker(settings, dev).root


def cpio_names(stream: Path, wanted: Sequence[str]) -> set[str]:
    """Which of `wanted` (paths without a leading ./ or /) are regular files in the newc stream (headers only)."""
    want = set(wanted)
    found: set[str] = set()
    with open(stream, "rb") as fh:
        while True:
            head = fh.read(110)
            if len(head) < 110 or head[:6] not in (b"070701", b"070702"):
                break
            mode, size, namesize = int(head[14:22], 16), int(head[54:62], 16), int(head[94:102], 16)
            name = fh.read(namesize)[:-1].decode("utf-8", "replace")
            fh.seek(-(110 + namesize) % 4, os.SEEK_CUR)
            if name == "TRAILER!!!":
                break
            clean = name.removeprefix("./").lstrip("/")
            if clean in want and mode & 0o170000 == 0o100000:
                found.add(clean)
            fh.seek(size + (-size % 4), os.SEEK_CUR)
    return found


def check_bootloader(plan: Plan, rootfs_cpio: Path, capsule: str) -> str:
    """The capsule's systemd-boot path (as in its root) when the plan installs one; refuses a capsule without."""
    if plan.bootloader != "systemd-boot":
        return ""
    found = cpio_names(rootfs_cpio, SYSTEMD_BOOT)
    if not found:
        raise InstallError(
            f"capsule {capsule} has no boot loader: /{SYSTEMD_BOOT[0]} is not in its root "
            "(install systemd-boot-efi in the capsule, or set BOOTLOADER=none to boot only through the master)"
        )
    return sorted(found)[0]


# ------------------------------------------------------------------------------------------------ doing it


@dataclass
class BootFiles:
    """What the installed disk boots: the capsule kernel and the kernel command line (root= added here)."""

    kernel: Path
    cmdline: Callable[[str, str], str]  # (root device, filesystem) -> the full command line
    initrd_out: Path  # where the generated disk initrd is written (stage one kexecs it)
    libraries: Callable[[Path], Sequence[Path]] = disk_initrd.elf_closure  # mdadm's shared libraries
    written: dict[str, str] = field(default_factory=dict)


def _wait_for(path: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise InstallError(f"{path} did not appear after re-reading the partition table")
        time.sleep(0.05)


@contextmanager
def _mounted(run: Runner, device: str, mountpoint: Path, fstype: str, *opts: str) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", fstype, *opts, device, str(mountpoint)])
    try:
        yield mountpoint
    finally:
        run(["umount", str(mountpoint)])


def _dev(dev: Path, device: str) -> str:
    return str(dev / Path(device).name)


def install(
    plan: Plan,
    rootfs_cpio: Path,
    *,
    manifest_hash: str,
    capsule: str,
    mountpoint: Path,
    run: Runner = run_command,
    dev: Path = Path("/dev"),
    load_modules: Callable[[list[str]], None] = lambda mods: None,
    clock: Callable[[], float] = time.time,
    boot: BootFiles | None = None,
    md_uuid: str = "",
) -> Marker:
    """Write `plan` to the disks and unpack the verified root stream; returns the marker written last."""
    started = time.monotonic()
    disks = [dev / d for d in plan.disks]
    loader = check_bootloader(plan, rootfs_cpio, capsule)  # before any disk is touched
    if plan.has("esp") and boot is None:
        raise InstallError("layout with an EFI system partition but no kernel to put on it")
    log.info("install_started", disks=" ".join(str(d) for d in disks), label=plan.label, raid=plan.raid,
             filesystem=plan.filesystem, bootloader=plan.bootloader, partitions=plan.summary())  # fmt: skip
    for disk in disks:  # an interrupted install must not look installed
        _write_at(disk, MARKER_OFFSET, bytes(MARKER_SIZE))
        _write_at(disk, LEGACY_MARKER_OFFSET, bytes(MARKER_SIZE))
    load_modules(layout.kernel_modules(plan) + (list(ESP_MODULES) if plan.has("esp") else []))
    script = mountpoint.parent / "sfdisk.script"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(layout.sfdisk_script(plan))
    for disk in disks:
        run(["sfdisk", "--quiet", "--wipe", "always", "--wipe-partitions", "always", str(disk)], stdin=script)
        for part in plan.partitions:
            _wait_for(dev / Path(partition_device(disk.name, part.number)).name)
    if plan.has("swap"):
        for swap in plan.devices("swap"):
            run(["mkswap", "-L", "swap", _dev(dev, swap)])
    if plan.has("esp"):
        for esp in plan.devices("esp"):
            run(["mkfs.fat", "-F", "32", "-n", "ESP", _dev(dev, esp)])
    root = _dev(dev, plan.device("root"))
    if plan.raid:
        md_uuid = md_uuid or layout.md_uuid_text(uuid.uuid4().hex)
        members = [_dev(dev, m) for m in plan.devices("raid")]
        run(["mdadm", "--create", root, "--run", "--level=1", f"--raid-devices={len(members)}", "--metadata=1.2",
             "--name=root", f"--uuid={md_uuid}", *members])  # fmt: skip
        _wait_for(Path(root))
    mkfs = FILESYSTEMS[plan.filesystem]
    if mkfs == "mkfs.xfs":
        run([mkfs, "-f", "-q", "-L", "root", root])
    else:
        fs_args = ["-t", plan.filesystem] if mkfs != "mke2fs" else []
        run([mkfs, "-F", "-q", *fs_args, "-L", "root", root])
    with _mounted(run, root, mountpoint, plan.filesystem) as target:
        run(["cpio", "-i", "-d", "-m", "-u"], stdin=rootfs_cpio, cwd=target)
        if boot is not None and plan.has("esp"):
            _boot_files(plan, boot, target, loader, md_uuid, run=run, dev=dev)
    if plan.raid:
        run(["mdadm", "--stop", root])  # a clean superblock (resync checkpoint) before kexec or power-off
    os.sync()
    marker = Marker(manifest_hash, capsule, clock(), plan.device("root"),
                    plan.device("esp") if plan.has("esp") else "", plan.filesystem)  # fmt: skip
    for disk in disks:
        _write_at(disk, MARKER_OFFSET, marker.encode())
    log.info("install_done", disks=" ".join(str(d) for d in disks), root=marker.root, esp=marker.esp,
             bootloader=plan.bootloader, bytes=rootfs_cpio.stat().st_size,
             duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
    return marker


def _boot_files(plan: Plan, boot: BootFiles, root: Path, loader: str, md_uuid: str, *, run: Runner,
                dev: Path) -> None:  # fmt: skip
    """Build the disk initrd from the unpacked root, then fill every disk's ESP (each disk boots alone)."""
    built = disk_initrd.build(boot.initrd_out, root=root, kernel=boot.kernel, plan=plan, md_uuid=md_uuid,
                              closure=boot.libraries)  # fmt: skip
    cmdline = boot.cmdline(plan.device("root"), plan.filesystem)
    files: dict[str, bytes | Path] = {ESP_KERNEL: boot.kernel, ESP_INITRD: built.path, ESP_CMDLINE: cmdline.encode()}
    if loader:
        files["EFI/BOOT/BOOTX64.EFI"] = root / loader
        files["loader/loader.conf"] = b"default perceus.conf\ntimeout 0\nconsole-mode keep\neditor no\n"
        entry = (f"title Perceus {plan.filesystem} root {plan.device('root')}\nlinux /{ESP_KERNEL}\n"
                 f"initrd /{ESP_INITRD}\noptions {cmdline}\n")  # fmt: skip
        files["loader/entries/perceus.conf"] = entry.encode()
    for esp in plan.devices("esp"):
        with _mounted(run, _dev(dev, esp), root.parent / "esp", "vfat") as mnt:
            try:
                for rel, src in files.items():
                    target = mnt / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(src, Path):
                        shutil.copyfile(src, target)
                    else:
                        target.write_bytes(src)
            except OSError as exc:  # ENOSPC: a BOOT_SIZE too small for this kernel and initrd
                raise InstallError(f"writing the boot files to the ESP {esp} failed: {exc.strerror}") from None
            os.sync()
    boot.written = {rel: str(len(src) if isinstance(src, bytes) else src.stat().st_size) for rel, src in files.items()}
    log.info("boot_files_written", esps=" ".join(plan.devices("esp")), loader=loader or "none",
             initrd_bytes=built.size, initrd_modules=len(built.modules),
             kernel_bytes=boot.kernel.stat().st_size)  # fmt: skip


def read_esp_initrd(marker: Marker, dest: Path, *, run: Runner = run_command, dev: Path = Path("/dev"),
                    load_modules: Callable[[list[str]], None] = lambda mods: None) -> Path:  # fmt: skip
    """A later boot through stage one: the disk initrd from the ESP the marker names (read-only mount)."""
    load_modules(list(ESP_MODULES))
    mnt = dest.parent / "esp"
    with _mounted(run, _dev(dev, marker.esp), mnt, "vfat", "-o", "ro"):
        try:
            shutil.copyfile(mnt / ESP_INITRD, dest)
        except OSError as exc:
            raise InstallError(f"the ESP {marker.esp} has no {ESP_INITRD}: {exc.strerror}") from None
    return dest


def boot_args(root: str, filesystem: str) -> list[str]:
    """Kernel words for booting the installed root (stage one appends them to the capsule's own)."""
    return [f"root={root}", "rw", f"rootfstype={filesystem}"]
