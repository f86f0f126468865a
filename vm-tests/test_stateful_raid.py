"""Issue 22 §4: an OVMF node with two virtio disks installs stateful RAID1 + GPT + xfs, boots its disk with
perceus-bus stopped (firmware → systemd-boot from the ESP → capsule kernel + disk initrd → md mirror → xfs root
→ the runtime agent), checks in once the bus is back, and on the next network boot with the master up goes
through stage one again, which boots the mirror with the disk initrd from the ESP without reinstalling.

The capsule is the stage-one image imported with `--type stateful` (busybox, CPython, the agent; its kernel is
Debian's, with md, xfs and virtio as modules) plus the host's systemd-boot (Debian systemd-boot-efi) where a
Debian capsule with that package carries it.  No capsule INITRD: stage one generates the disk initrd.

Boot order: the first power-on is network first (UEFI PXE, as every boot with the master up).  The power-on with
the master down puts the disks first: network first, OVMF spends ~2 minutes in DHCP time-outs (PXEv4 ~61 s,
HTTPv4 ~60 s, measured; PXEv6/HTTPv6 as long) before it tries a disk, which is firmware behaviour, not ours.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from perceus.lab import Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.lab.demo import prepare_master
from perceus.lab.qemu import OVMF, PxeBoot, QemuNode
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.config import Paths
from perceus.master.store.sqlite import SQLiteStore

SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
pytestmark = [
    pytest.mark.vm,
    pytest.mark.slow,  # ~3.5 min: three boots of one OVMF node (PXE install, disk, PXE again)
    pytest.mark.skipif(not OVMF.exists(), reason=f"needs {OVMF} (apt install ovmf)"),
    pytest.mark.skipif(not SYSTEMD_BOOT.exists(), reason=f"needs {SYSTEMD_BOOT} (apt install systemd-boot-efi)"),
]


def _import_raid_capsule(paths: Paths) -> None:
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = raid", defaults))
    imported = perceus_cli(paths, "vnfs", "import", str(paths.tftp / "stage1.cpio.zst"), "--kernel",
                           str(paths.tftp / "vmlinuz"), "--name", "raid", "--type", "stateful")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    cap = paths.vnfs / "raid"
    loader = cap / "rootfs/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
    loader.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SYSTEMD_BOOT, loader)
    cfg = CapsuleConfig.load(cap / "config")
    for key, value in (("TARGETS", "/dev/vda /dev/vdb"), ("RAID", "raid1"), ("LAYOUT", "auto"),
                       ("FILESYSTEM", "xfs"), ("SWAP_SIZE", "64"), ("KERNEL_ARGS", "init=/init")):  # fmt: skip
        cfg.set(key, value)
    cfg.save(cap / "config")
    rebuilt = perceus_cli(paths, "vnfs", "rebuild", "raid")
    assert rebuilt.returncode == 0, rebuilt.stderr


def _wait(node: QemuNode, pattern: str, timeout: float, bus: LabBus | None, start: int = 0) -> tuple[float, int]:
    try:
        line = node.wait_for(pattern, timeout, start=start)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{bus.log_tail() if bus else '(bus stopped)'}")
    return line.t, line.index


def test_ovmf_raid1_gpt_install_boots_from_disk_without_the_master(
    lab: Lab, lab_paths: Paths, tmp_path: Path, record_time: Callable[[str, float], None]
) -> None:
    t = time.monotonic()
    prepare_master(lab_paths, stage1_level=19, progress=print)
    _import_raid_capsule(lab_paths)
    record_time("raid capsule import + systemd-boot + rebuild", time.monotonic() - t)
    disks: list[str] = []
    for i, name in enumerate(("a", "b")):
        path = tmp_path / f"disk-{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "2G"], check=True)
        disks += ["-drive", f"file={path},if=none,id=d{i},format=qcow2",
                  "-device", f"virtio-blk-pci,drive=d{i},bootindex={i + 2}"]  # fmt: skip
    bus: LabBus | None = start_bus(lab, lab_paths)
    first = lab.add_node(PxeBoot(firmware="uefi"), memory_mb=1024, extra=tuple(disks))
    done, i_done = _wait(first, r"install_done", 420, bus)
    started, _ = _wait(first, r"install_started", 1, bus)
    record_time("first boot (UEFI PXE): install done", done)
    record_time("install (GPT x2, RAID1, xfs, ESP x2, unpack, disk initrd)", done - started)
    line = first.serial.find(r"install_started")
    assert line is not None and "label=gpt" in line.text and "raid=True" in line.text, line
    _wait(first, r"perceus-diskboot: /dev/md0 mounted \(xfs\)", 180, bus, start=i_done)
    welcomed, _ = _wait(first, r"node_welcomed|checked_in", 180, bus, start=i_done)
    record_time("first boot: runtime from the md root (kexec) checked in", welcomed)
    first.stop()

    # Master down: the bus (and the dnsmasq it supervises) stopped; the same machine (MAC, disks) powers on
    # with its disks first in the firmware order.
    assert bus is not None
    port = int(bus.host_port.rsplit(":", 1)[1])  # the node's perceus.master= (loader entry) names this port
    bus.process.stop()
    bus = None
    argv = [a.replace("romfile=,bootindex=1", "romfile=,bootindex=9") for a in first.argv]
    argv = [a.replace("bootindex=2", "bootindex=0") if a.startswith("virtio-blk-pci,drive=d0") else a for a in argv]
    second = QemuNode("node0-disk", first.mac, first.tap, argv, lab.workdir)
    lab.nodes.append(second)  # the lab stops it
    mounted, i_mounted = _wait(second, r"perceus-diskboot: /dev/md0 mounted \(xfs\)", 240, bus)
    record_time("master down: power-on to md root mounted (systemd-boot, disk initrd)", mounted)
    runtime, i_runtime = _wait(second, r"perceus-init: starting agent", 120, bus, start=i_mounted)
    record_time("master down: power-on to the runtime agent starting", runtime)
    assert second.serial.find(r"install_started") is None
    assert second.serial.find(r"Start PXE") is None  # no network boot: this was the disk

    # provisiond runs without its master: its hellos time out and back off (it does not give up) …
    _wait(second, r"hello_failed code=TIMEOUT", 120, bus, start=i_runtime)
    # … and once the bus is back, it checks in as the same node.
    back = time.monotonic()
    bus = start_bus(lab, lab_paths, port=port)
    _wait(second, r"checked_in|node_welcomed", 180, bus, start=i_runtime)
    record_time("bus restarted to check-in of the disk-booted node", time.monotonic() - back)
    with SQLiteStore(lab_paths.database) as store:
        row = store.get(first.mac.upper())
    assert row is not None and (row.hostname, row.status) == ("n0000", "ready"), row
    second.stop()

    # Master up, network first again (`node set boot perceus`, the default): stage one finds the marker, fetches
    # only the kernel, reads the disk initrd from the ESP and kexecs into the mirror without reinstalling.
    third = QemuNode("node0-pxe", first.mac, first.tap, first.argv, lab.workdir)
    lab.nodes.append(third)
    fetch = third.wait_for(r"capsule_fetch_started", 240)
    assert "rootfs=False" in fetch.text, fetch.text
    skipped, i_skipped = _wait(third, r"install_skipped", 120, bus)
    record_time("master up again: power-on to install_skipped (marker found)", skipped)
    _wait(third, r"perceus-diskboot: /dev/md0 mounted \(xfs\)", 120, bus, start=i_skipped)
    welcomed, _ = _wait(third, r"node_welcomed|checked_in", 180, bus, start=i_skipped)
    record_time("master up again: PXE, stage one, disk initrd from the ESP, md root checked in", welcomed)
    assert third.serial.find(r"install_started") is None
