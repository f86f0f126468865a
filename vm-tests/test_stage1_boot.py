"""The stage-one image boots under QEMU (TCG) and its self-test passes: direct -kernel and real PXE."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, PxeBoot, ipxe_script
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

CMDLINE = "console=ttyS0 quiet panic=-1 perceus.selftest"
BOOT_TIMEOUT = 150.0
# QEMU NIC model -> the guest driver that must bind to it (both travel in the image).
Recorder = Callable[[str, float], None]
DRIVERS = {"virtio-net-pci": "virtio_net", "e1000": "e1000"}


def _assert_selftest(
    lab: Lab, node_boot: DirectBoot | PxeBoot, record_time: Recorder, *, nic: str = "virtio-net-pci"
) -> None:
    node = lab.add_node(node_boot, nic=nic)
    init = node.wait_for(r"^perceus-init: up", BOOT_TIMEOUT)
    record_time("/init up", init.t)
    driver = DRIVERS[nic]
    loaded = node.wait_for(rf"selftest nic-ok eth0 driver={driver}\b", 60)
    record_time(f"{driver} loaded by modalias", loaded.t)
    ok = node.wait_for(r"^python-ok$", 60)
    record_time("python-ok (all node libraries imported)", ok.t)
    node.wait_for(r"^perceus-protocol-ok$", 30)
    assert node.wait_exit(60) == 0, "guest should power off cleanly after the self-test"


@pytest.mark.parametrize("nic", sorted(DRIVERS))
def test_direct_kernel_boot_reaches_python(
    lab: Lab, stage1_image: BuildResult, record_time: Recorder, nic: str
) -> None:
    lab.start_dnsmasq()
    _assert_selftest(lab, DirectBoot(stage1_image.kernel, stage1_image.initrd, CMDLINE), record_time, nic=nic)


def test_pxe_boot_reaches_python(lab: Lab, stage1_image: BuildResult, record_time: Recorder, tmp_path: Path) -> None:
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    shutil.copyfile(stage1_image.kernel, tftp / "vmlinuz")
    shutil.copyfile(stage1_image.initrd, tftp / "stage1.cpio.zst")
    (tftp / "boot.ipxe").write_text(ipxe_script("vmlinuz", "stage1.cpio.zst", CMDLINE))
    lab.start_dnsmasq(tftp_root=tftp, boot_file="boot.ipxe")
    _assert_selftest(lab, PxeBoot(), record_time)
    # iPXE prints to VGA only; dnsmasq's log proves the node really fetched over TFTP.
    assert lab.dnsmasq_config is not None
    log = lab.dnsmasq_config.logfile.read_text()
    assert "sent" in log and "stage1.cpio.zst" in log, log[-2000:]
    assert "52:54:00:77:00:00" in lab.leases()


def test_marker_payload_boots(lab: Lab, stage1_image: BuildResult, marker_initrd: Path, record_time: Recorder) -> None:
    """The kexec test payload works on its own, so a failing kexec test points at kexec."""
    node = lab.add_node(DirectBoot(stage1_image.kernel, marker_initrd, "console=ttyS0 quiet panic=-1 x=1"))
    line = node.wait_for(r"^perceus-test-payload-ok cmdline: .*x=1", BOOT_TIMEOUT)
    record_time("payload marker", line.t)
    assert node.wait_exit(60) == 0
