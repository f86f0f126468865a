"""Inventory from a fake /proc and /sys tree: bounded, tolerant of missing files."""

from __future__ import annotations

import os
from pathlib import Path

from perceus.agent import inventory


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    _write(proc / "cpuinfo", "processor\t: 0\nmodel name\t: QEMU Virtual CPU version 2.5+\n")
    _write(proc / "meminfo", "MemTotal:        2048000 kB\nMemFree: 1 kB\n")
    dev = sys / "devices/pci0000:00/0000:00:03.0"
    _write(sys / "bus/pci/drivers/virtio-pci/.keep", "")
    dev.mkdir(parents=True)
    os.symlink(sys / "bus/pci/drivers/virtio-pci", dev / "driver")
    for name, mac, kind in (("eth0", "52:54:00:aa:bb:01", "1"), ("eth1", "52:54:00:aa:bb:02", "1"),
                            ("lo", "00:00:00:00:00:00", "772"), ("veth0", "aa:aa:aa:aa:aa:aa", "1")):  # fmt: skip
        net = sys / "class/net" / name
        _write(net / "address", mac + "\n")
        _write(net / "type", kind + "\n")
        _write(net / "carrier", "1\n")
        _write(net / "speed", "1000\n" if name == "eth0" else "-1\n")
        if name.startswith("eth"):
            os.symlink(dev, net / "device")
    _write(sys / "block/vda/size", "2097152\n")
    _write(sys / "block/vda/device/model", "QEMU HARDDISK\n")
    _write(sys / "block/loop0/size", "0\n")
    _write(sys / "class/dmi/id/sys_vendor", "QEMU\n")
    _write(sys / "class/dmi/id/product_name", "Standard PC (Q35)\n")
    return proc, sys


def test_collect(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path)
    inv = inventory.collect(proc=proc, sys=sys, ipmi=())
    assert inv["cpu"]["model"] == "QEMU Virtual CPU version 2.5+"
    assert inv["memory"] == 2048000 * 1024
    assert [n["name"] for n in inv["nics"]] == ["eth0", "eth1"]  # lo and virtual veth0 left out
    assert inv["nics"][0] == {"name": "eth0", "mac": "52:54:00:AA:BB:01", "driver": "virtio-pci", "link": True,
                              "speed": 1000}  # fmt: skip
    assert inv["nics"][1]["speed"] == 0
    assert inv["disks"] == [{"name": "vda", "size": 2097152 * 512, "model": "QEMU HARDDISK"}]
    assert inv["dmi"] == {"vendor": "QEMU", "product": "Standard PC (Q35)", "serial": ""}
    assert inv["bmc"] == {}  # no IPMI device: nothing is opened or asked


def test_macs_put_the_chosen_one_first(tmp_path: Path) -> None:
    _, sys = _tree(tmp_path)
    assert inventory.hardware_macs(sys) == ["52:54:00:AA:BB:01", "52:54:00:AA:BB:02"]
    assert inventory.hardware_macs(sys, first="52:54:00:aa:bb:02") == ["52:54:00:AA:BB:02", "52:54:00:AA:BB:01"]


def test_empty_tree(tmp_path: Path) -> None:
    inv = inventory.collect(proc=tmp_path, sys=tmp_path, ipmi=())
    assert inv["nics"] == [] and inv["disks"] == [] and inv["memory"] == 0


def test_no_ipmi_device_no_bmc(tmp_path: Path) -> None:
    assert inventory.bmc((tmp_path / "ipmi0",)) == {}
