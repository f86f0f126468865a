"""Issue 4 (a): an unknown node boots stage one in QEMU, gets DHCP in the lab, checks in with perceus-bus."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm


def test_unknown_node_boots_gets_dhcp_and_checks_in(
    lab: Lab, lab_bus: LabBus, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {lab_bus.kernel_args} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append))
    lease = node.wait_for(r"dhcp_lease iface=eth0 ip=10\.77\.0\.", 150)
    record_time("DHCP lease", lease.t)
    try:
        answered = node.wait_for(r"master_says_wait|node_welcomed", 60)
    except SerialTimeout:
        if not lab_bus.process.running():
            pytest.fail(f"perceus-bus died while the node checked in: {lab_bus.log_tail()}")
        raise
    record_time("check-in answered by perceus-bus", answered.t)

    deadline = time.monotonic() + 15
    while True:
        listing = lab_bus.cli("node", "list", "--json")
        nodes = json.loads(listing.stdout or "[]")
        mine = [n for n in nodes if str(n.get("nodeid", "")).lower() == node.mac]
        if mine:
            break
        assert time.monotonic() < deadline, f"node {node.mac} not listed: {listing.stdout} {listing.stderr}"
        time.sleep(0.2)
    assert mine[0]["hostname"] == "n0000", mine[0]  # the first auto-assigned name (defaults.conf n####)
    assert mine[0]["status"] in ("init", "pending", "enrolled"), mine[0]
