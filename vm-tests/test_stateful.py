"""Issue 5 §4 "Stateful": stage one installs a capsule to a virtio disk, kexecs into it, and a second boot with
the same disk boots it without installing or fetching the root stream again.

The capsule is the stage-one image imported with `--type stateful` (busybox, CPython, the agent).  Its kernel
is Debian's, which needs virtio_blk and ext4 as modules to mount a disk root, so the capsule gets an INITRD
the way a Debian capsule has initramfs-tools' one: a tiny busybox initramfs built here from the capsule's own
modules, which mounts `root=` and switch_roots into `init=` (/init of the image, which starts the agent).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.config import Paths
from perceus.stage1 import BuildResult, busybox
from perceus.stage1.layout import skeleton
from perceus.stage1.pack import pack

pytestmark = pytest.mark.vm

MOUNT_ROOT_INIT = """#!/bin/sh
# Mount root= (after loading the disk and filesystem drivers) and switch_root into init=.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_pci virtio_blk crc32c_generic ext4; do modprobe "$m"; done
root= init=/sbin/init
for w in $(cat /proc/cmdline); do
    case "$w" in root=*) root=${w#root=} ;; init=*) init=${w#init=} ;; esac
done
i=0
while [ ! -b "$root" ] && [ "$i" -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /newroot
mount -t ext4 -o rw "$root" /newroot || { echo "mount-root: cannot mount $root"; poweroff -f; }
echo "mount-root: $root mounted, switching to $init"
umount /dev /sys /proc
exec switch_root /newroot "$init"
"""


def mount_root_initrd(rootfs: Path, dest: Path) -> None:
    """A busybox initramfs carrying the capsule's kernel modules and MOUNT_ROOT_INIT."""
    work = dest.parent / "mount-root"
    skeleton(work)
    busybox.install(work)
    shutil.copytree(rootfs / "usr/lib/modules", work / "usr/lib/modules", symlinks=True, dirs_exist_ok=True)
    (work / "init").write_text(MOUNT_ROOT_INIT)
    (work / "init").chmod(0o755)
    pack(work, dest, level=3)


@pytest.fixture
def master(
    lab: Lab, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> Iterator[LabBus]:
    """perceus-bus with stateful capsule `disk` (TARGETS=/dev/vda, 64 MiB swap, ext4) for every new node."""
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = disk", defaults))
    t = time.monotonic()
    imported = perceus_cli(paths, "vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel),
                           "--name", "disk", "--type", "stateful")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    cap = paths.vnfs / "disk"
    (cap / "rootfs/boot").mkdir(exist_ok=True)
    mount_root_initrd(cap / "rootfs", cap / "rootfs/boot/initrd.img")
    cfg = CapsuleConfig.load(cap / "config")
    for key, value in (("TARGETS", "/dev/vda"), ("SWAP_SIZE", "64"), ("FILESYSTEM", "ext4"),
                       ("INITRD", "/boot/initrd.img"), ("KERNEL_ARGS", "init=/init")):  # fmt: skip
        cfg.set(key, value)
    cfg.save(cap / "config")
    rebuilt = perceus_cli(paths, "vnfs", "rebuild", "disk")
    assert rebuilt.returncode == 0, rebuilt.stderr
    record_time("stateful capsule import + initrd + rebuild", time.monotonic() - t)
    yield start_bus(lab, paths, port=9987)


def test_stateful_node_installs_to_disk_boots_it_and_reboots_without_reinstalling(
    lab: Lab, master: LabBus, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> None:
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    drive = ("-drive", f"file={disk},if=virtio,format=qcow2")
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {master.kernel_args} perceus.debug=1"
    boot = DirectBoot(stage1_image.kernel, stage1_image.initrd, append)
    first = lab.add_node(boot, memory_mb=1024, extra=drive)
    try:
        done = first.wait_for(r"install_done", 300)
        record_time("first boot: install done", done.t)
        started = first.wait_for(r"install_started", 1)
        record_time("install duration", done.t - started.t)
        runtime = first.wait_for(r"perceus-init: starting agent", 120, start=done.index)
        welcomed = first.wait_for(r"node_welcomed|checked_in", 120, start=runtime.index)
        record_time("first boot: runtime agent from disk welcomed", welcomed.t)
        assert first.wait_for(r"mount-root: /dev/vda2 mounted", 1).index < runtime.index
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{master.log_tail()}")
    first.stop()

    # Same disk, a new power-on (QEMU runs with -no-reboot, so a new process; the lab gives it a new MAC).
    second = lab.add_node(boot, memory_mb=1024, extra=drive)
    try:
        fetch = second.wait_for(r"capsule_fetch_started", 300)
        assert "rootfs=False" in fetch.text, fetch.text
        skipped = second.wait_for(r"install_skipped", 120)
        record_time("second boot: disk already installed, kexec", skipped.t)
        runtime = second.wait_for(r"perceus-init: starting agent", 120, start=skipped.index)
        welcomed = second.wait_for(r"node_welcomed|checked_in", 120, start=runtime.index)
        record_time("second boot: runtime agent from disk welcomed", welcomed.t)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{master.log_tail()}")
    assert second.serial.find(r"install_started") is None, "the second boot installed again"
