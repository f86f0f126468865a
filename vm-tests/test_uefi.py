"""Issue 22: a UEFI node (OVMF) PXE-boots to runtime: firmware PXE → ipxe.efi over TFTP → boot.ipxe → stage one
over HTTP from perceus-bus → enrolled → capsule → kexec → provisiond checks in.

The NIC has no option ROM, so it is OVMF's own PXE client that asks dnsmasq (client-arch 7) for a loader, as on a
real UEFI server; the SeaBIOS path is test_pxe_demo.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from perceus.lab import Lab
from perceus.lab.bus import start_bus
from perceus.lab.demo import NodeProgress, prepare_master
from perceus.lab.qemu import OVMF, PxeBoot
from perceus.master.config import Paths
from perceus.master.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.vm, pytest.mark.skipif(not OVMF.exists(), reason=f"needs {OVMF} (apt install ovmf)")]


def test_ovmf_node_pxe_boots_to_runtime(lab: Lab, lab_paths: Paths, record_time: Callable[[str, float], None]) -> None:
    prepare_master(lab_paths, stage1_level=19, progress=print)
    bus = start_bus(lab, lab_paths)
    node = NodeProgress(lab.add_node(PxeBoot(firmware="uefi"), memory_mb=1024))
    deadline = time.monotonic() + 300
    while not node.done:
        assert node.qemu.process.running(), f"QEMU ended; console: {node.qemu.serial}"
        assert time.monotonic() < deadline, f"not checked in after 300 s (last step {node.last!r}): {bus.log_tail()}"
        time.sleep(0.5)
        node.scan()
    mac = node.qemu.mac.upper()
    with SQLiteStore(lab_paths.database) as store:
        row = store.get(mac)
    assert row is not None and (row.hostname, row.status, row.phase) == ("n0000", "ready", "runtime"), row

    # The UEFI chain, from the master's side: dnsmasq sent OVMF ipxe.efi (not undionly.kpxe) over TFTP …
    dnsmasq_log = (lab_paths.logs / "dnsmasq.log").read_text(errors="replace")
    assert re.search(r"sent \S*/ipxe\.efi to 10\.77\.", dnsmasq_log), dnsmasq_log[-2000:]
    assert "undionly.kpxe" not in dnsmasq_log.split("sent")[-1]
    # … and stage one came over HTTP from perceus-bus, whole (Content-Length = file size).
    log = bus.process.log.read_text(errors="replace") if bus.process.log else ""
    for name in ("vmlinuz", "stage1.cpio.zst"):
        size = (lab_paths.tftp / name).stat().st_size
        assert f"method=GET path=/{name} status=200 bytes={size}" in log, log[-3000:]
    summary = node.summary()
    print(summary)
    assert summary["total"] is not None
    record_time("OVMF: power-on to first check-in", summary["total"])
