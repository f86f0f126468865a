"""Stateful layouts: the capsule keys, GPT/MBR/RAID1 plans, sizes and refusals, and the sfdisk script.

The numbers are the documented behaviour of the tools the plan is written for: sfdisk(8) input format (start and
size in sectors, `type=` GUID or MBR id), GPT's 33 backup sectors at the end of the disk, an MBR's 32-bit sector
numbers (2 TiB), mkfs.xfs's 300 MB minimum (xfsprogs >= 5.19), FAT32's cluster floor for the ESP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.agent import layout
from perceus.agent.layout import InstallError, Settings, make_plan, sfdisk_script

GIB = 1 << 30
MIB = 1 << 20
S_1G = GIB // 512
S_2G = 2 * S_1G


def test_settings_defaults_and_new_keys() -> None:
    s = Settings.parse({"targets": "/dev/vda /dev/vdb", "raid": "raid1", "layout": "GPT", "filesystem": "xfs",
                        "bootloader": "systemd-boot", "swap_size": "1G"})  # fmt: skip
    assert s == Settings(("/dev/vda", "/dev/vdb"), "xfs", 1024, 0, "gpt", "raid1", "systemd-boot")
    assert s.disks == ("vda", "vdb")
    assert Settings.parse({"targets": "sda"}) == Settings(("sda",))


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"targets": "vda", "layout": "zfs"}, "LAYOUT 'zfs' is not supported"),
        ({"targets": "vda", "bootloader": "grub"}, "BOOTLOADER 'grub'"),
        ({"targets": "vda", "raid": "raid5"}, "RAID 'raid5'"),
        ({"targets": "vda", "raid": "raid1"}, "mirrors exactly two"),
        ({"targets": "vda vdb"}, "without RAID, TARGETS names one"),
        ({"targets": "vda vda", "raid": "1"}, "same disk twice"),
        ({"targets": "vda", "filesystem": "btrfs"}, "FILESYSTEM 'btrfs'"),
    ],
)
def test_settings_refusals(raw: dict[str, str], fragment: str) -> None:
    with pytest.raises(InstallError, match=fragment):
        Settings.parse(raw)


def test_auto_is_gpt_with_esp_and_systemd_boot_on_uefi() -> None:
    plan = make_plan(Settings(("vda",), swap_mib=64), {"vda": S_1G}, 100 * MIB, uefi=True)
    assert (plan.label, plan.bootloader, plan.raid) == ("gpt", "systemd-boot", False)
    esp, swap, root = plan.partitions
    assert (esp.role, esp.start, esp.sectors) == ("esp", 2048, 256 * 2048)
    assert (swap.role, swap.start, swap.sectors) == ("swap", 2048 + 256 * 2048, 64 * 2048)
    assert root.role == "root" and root.start == 2048 + 320 * 2048
    # the backup GPT (33 sectors) stays free at the end; root stays 1 MiB aligned
    assert root.start + root.sectors <= S_1G - 33 and root.sectors % 2048 == 0
    assert plan.device("root") == "/dev/vda3" and plan.device("esp") == "/dev/vda1"


def test_auto_is_mbr_without_esp_on_bios_as_before() -> None:
    plan = make_plan(Settings(("vda",), swap_mib=64), {"vda": S_1G}, 100 * MIB, uefi=False)
    assert (plan.label, plan.bootloader) == ("dos", "none")
    assert [p.role for p in plan.partitions] == ["swap", "root"]
    # MBR needs no backup table: root ends on the last whole MiB of the disk
    assert plan.partitions[-1].start + plan.partitions[-1].sectors == S_1G


def test_raid1_mirrors_the_root_partition_and_sizes_by_the_smaller_disk() -> None:
    settings = Settings(("vda", "vdb"), "xfs", 64, 0, "auto", "raid1")
    plan = make_plan(settings, {"vda": S_2G, "vdb": S_1G + 4096}, 200 * MIB, uefi=True)
    assert plan.raid and plan.disk_sectors == S_1G + 4096
    assert [p.role for p in plan.partitions] == ["esp", "swap", "raid"]
    assert plan.device("root") == "/dev/md0"
    assert plan.devices("raid") == ["/dev/vda3", "/dev/vdb3"]
    assert plan.devices("esp") == ["/dev/vda1", "/dev/vdb1"]  # each disk boots alone
    assert plan.partitions[-1].start + plan.partitions[-1].sectors <= S_1G + 4096 - 33
    assert layout.kernel_modules(plan) == ["crc32c_generic", "xfs", "md_mod", "raid1"]


def test_raid1_on_bios_gets_an_mbr_esp_for_the_disk_initrd() -> None:
    plan = make_plan(Settings(("sda", "sdb"), raid="raid1"), {"sda": S_1G, "sdb": S_1G}, 1 * MIB, uefi=False)
    assert plan.label == "dos" and [p.role for p in plan.partitions] == ["esp", "raid"]
    assert plan.bootloader == "none"


def test_refuses_missing_second_disk_naming_what_exists() -> None:
    with pytest.raises(InstallError, match=r"/dev/vdb is not present \(disks found: vda\)"):
        make_plan(Settings(("vda", "vdb"), raid="raid1"), {"vda": S_1G}, MIB, uefi=True)


def test_refuses_too_small_disk_with_the_numbers() -> None:
    # 1 MiB before the ESP + 256 ESP + root 500 x 1.25 + 64 + 1 for the backup GPT
    with pytest.raises(InstallError, match=r"/dev/vdb is too small: 512 MiB, the layout needs 947 MiB") as info:
        make_plan(Settings(("vda", "vdb"), raid="raid1"), {"vda": S_2G, "vdb": S_1G // 2}, 500 * MIB, uefi=True)
    assert info.value.disk == "vdb"


def test_xfs_root_needs_300_mib_even_for_a_tiny_stream() -> None:
    # 256 ESP + 300 root + 2 MiB of table overhead: 600 MiB fits, 500 MiB does not
    make_plan(Settings(("vda",), "xfs"), {"vda": 600 * 2048}, MIB, uefi=True)
    with pytest.raises(InstallError, match=r"root 300 MiB .* on xfs"):
        make_plan(Settings(("vda",), "xfs"), {"vda": 500 * 2048}, MIB, uefi=True)


def test_esp_size_floor() -> None:
    with pytest.raises(InstallError, match="BOOT_SIZE 32 MB is too small for the EFI system partition"):
        make_plan(Settings(("vda",), boot_mib=32), {"vda": S_1G}, MIB, uefi=True)
    plan = make_plan(Settings(("vda",), boot_mib=100), {"vda": S_1G}, MIB, uefi=True)
    assert plan.part("esp").mib == 100


def test_systemd_boot_on_bios_is_refused() -> None:
    with pytest.raises(InstallError, match="systemd-boot needs UEFI"):
        make_plan(Settings(("vda",), bootloader="systemd-boot"), {"vda": S_1G}, MIB, uefi=False)


def test_mbr_refuses_past_2_tib_and_gpt_does_not() -> None:
    big = {"vda": 0x1_0000_0000}  # 2 TiB + 512 bytes
    with pytest.raises(InstallError, match="larger than 2 TiB"):
        make_plan(Settings(("vda",), layout="mbr"), big, MIB, uefi=True)
    assert make_plan(Settings(("vda",), layout="gpt"), big, MIB, uefi=False).label == "gpt"


def test_sfdisk_script_gpt() -> None:
    plan = make_plan(Settings(("vda",), swap_mib=64), {"vda": S_1G}, MIB, uefi=True)
    lines = sfdisk_script(plan).splitlines()
    assert lines[:2] == ["label: gpt", "unit: sectors"]
    esp, swap, root = plan.partitions
    assert lines[3] == f'start=2048, size={esp.sectors}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"'
    assert (
        lines[4] == f'start={swap.start}, size={swap.sectors}, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"'
    )
    assert (
        lines[5] == f'start={root.start}, size={root.sectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"'
    )


def test_sfdisk_script_mbr_raid_members_are_non_fs_data() -> None:
    plan = make_plan(Settings(("sda", "sdb"), swap_mib=64, raid="raid1"), {"sda": S_1G, "sdb": S_1G}, MIB,
                     uefi=False)  # fmt: skip
    body = sfdisk_script(plan).splitlines()[3:]
    assert [line.split("type=")[1] for line in body] == ["ef, bootable", "82", "da"]


def test_md_uuid_notation() -> None:
    assert layout.md_uuid_text("0123456789abcdef0123456789ABCDEF") == "01234567:89abcdef:01234567:89abcdef"
    with pytest.raises(ValueError, match="128-bit"):
        layout.md_uuid_text("xyz")


def test_booted_uefi_reads_sys_firmware_efi(tmp_path: Path) -> None:
    assert not layout.booted_uefi(tmp_path / "efi")
    (tmp_path / "efi").mkdir()
    assert layout.booted_uefi(tmp_path / "efi")
