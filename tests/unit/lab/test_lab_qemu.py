"""QEMU command lines and node MACs of the lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.lab.qemu import DirectBoot, PxeBoot, node_mac, qemu_argv


def test_node_mac_is_deterministic() -> None:
    assert node_mac(0, 0) == "52:54:00:77:00:00"
    assert node_mac(1, 10) == "52:54:00:77:01:0a"
    with pytest.raises(ValueError):
        node_mac(0, 256)


def test_direct_boot_argv() -> None:
    argv = qemu_argv(
        name="node0",
        mac="52:54:00:77:00:00",
        tap="tap0",
        boot=DirectBoot(Path("/k/vmlinuz"), Path("/k/stage1.cpio.zst"), "console=ttyS0 quiet"),
    )
    joined = " ".join(argv)
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert "kvm" not in joined
    for flag in ("-nodefaults", "-no-reboot"):
        assert flag in argv
    assert argv[argv.index("-serial") + 1] == "stdio"
    assert argv[argv.index("-smp") + 1] == "1"
    assert "tap,id=n0,ifname=tap0,script=no,downscript=no" in argv
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:77:00:00" in argv
    assert argv[argv.index("-append") + 1] == "console=ttyS0 quiet"
    assert "-boot" not in argv


def test_pxe_boot_argv_has_no_kernel() -> None:
    argv = qemu_argv(name="n", mac="52:54:00:77:00:01", tap="tap1", boot=PxeBoot(), nic="e1000", memory_mb=768)
    assert argv[argv.index("-boot") + 1] == "n"
    assert "-kernel" not in argv and "-initrd" not in argv
    assert "e1000,netdev=n0,mac=52:54:00:77:00:01" in argv
    assert argv[argv.index("-m") + 1] == "768"


def test_uefi_pxe_boot_argv_uses_ovmf_without_an_option_rom() -> None:
    argv = qemu_argv(name="n", mac="52:54:00:77:00:02", tap="tap2", boot=PxeBoot(firmware="uefi"), memory_mb=1024)
    assert argv[argv.index("-bios") + 1] == "/usr/share/ovmf/OVMF.fd"
    # the firmware's own PXE client must run (no iPXE ROM), so dnsmasq sees client-arch 7 and sends ipxe.efi
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:77:00:02,romfile=,bootindex=1" in argv
    assert "-boot" not in argv and "-kernel" not in argv
