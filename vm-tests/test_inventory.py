"""Issue 17: a real QEMU node's hardware inventory (sent with stage one's hello) is kept by perceus-bus and shown
by `perceus node show --json` and `node list --columns`: CPU count, memory, the virtio disk, the NIC."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perceus.lab import DirectBoot, Lab
from perceus.lab.bus import LabBus
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

MEMORY_MB = 512
DISK_BYTES = 96 << 20


def _inventory(lab_bus: LabBus, deadline: float) -> dict[str, Any]:
    while True:
        shown = lab_bus.cli("--json", "node", "show", "n0000")
        if shown.returncode == 0:
            (node,) = json.loads(shown.stdout)
            if node["inventory"] is not None:
                return dict(node)
        assert time.monotonic() < deadline, f"no inventory for n0000: {shown.stdout} {shown.stderr}"
        time.sleep(0.5)


def test_inventory_of_a_real_node(
    lab: Lab, lab_bus: LabBus, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> None:
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as fh:
        fh.truncate(DISK_BYTES)  # sparse: the size is what the node must report
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {lab_bus.kernel_args} perceus.debug=1"
    node = lab.add_node(
        DirectBoot(stage1_image.kernel, stage1_image.initrd, append),
        memory_mb=MEMORY_MB,
        extra=("-drive", f"file={disk},if=virtio,format=raw"),
    )
    answered = node.wait_for(r"master_says_wait|node_welcomed", 210)
    record_time("hello answered (inventory sent)", answered.t)

    shown = _inventory(lab_bus, time.monotonic() + 20)
    inv = shown["inventory"]
    assert shown["nodeid"].lower() == node.mac
    assert inv["stage"] == "stage1" and inv["changes"] == []
    assert inv["cpu"]["count"] == 1 and inv["cpu"]["model"]  # qemu_argv runs `-smp 1 -cpu max`
    assert (MEMORY_MB - 96) << 20 < inv["memory"] <= MEMORY_MB << 20  # MemTotal: RAM minus the kernel's share
    assert {"name": "vda", "size": DISK_BYTES, "model": ""} in inv["disks"]
    (nic,) = [n for n in inv["nics"] if n["mac"].lower() == node.mac]
    assert nic["driver"] == "virtio_net" and nic["link"] is True
    assert inv["dmi"]["vendor"] == "QEMU"

    table = lab_bus.cli("node", "list", "n0000", "--columns", "cpus,memory,disks,vendor")
    assert table.returncode == 0, table.stderr
    row = table.stdout.splitlines()[-1].split()
    assert row[:2] == ["n0000", "1"] and row[-1] == "QEMU" and "(96 MiB)" in table.stdout, table.stdout
    summary = lab_bus.cli("node", "summary", "--by", "cpus")
    assert summary.stdout.splitlines()[-1].split() == ["1", "1", "n0000"], summary.stdout
