"""Issue 19: one power cycle through Redfish on a real QEMU lab node.  The node's BMC is the lab's Redfish bridge
(perceus.lab.redfish_bridge: sushy-tools' emulator whose system is the QEMU process), in the lab's namespace
with the master; `perceus node power on` starts the powered-off VM, which PXE-boots and checks in, `power cycle`
resets it in place (ForceRestart: firmware and stage one again), `power off` ends QEMU."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import Lab, PxeBoot, SerialTimeout
from perceus.lab.bmc import REDFISH_PASSWORD
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.lab.demo import BUS_PORT, CAPSULE, prepare_master
from perceus.lab.redfish_node import RedfishNode
from perceus.master.config import Paths
from perceus.master.power.consolelog import console_path, read
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

pytestmark = pytest.mark.vm
HOST = "rf01"


@pytest.fixture
def master_paths(vm_host: None, tmp_path: Path) -> Paths:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs qemu-system-x86_64")
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    prepare_master(paths, stage1_level=19, progress=print)
    return paths


@pytest.fixture
def node(lab: Lab, master_paths: Paths) -> Iterator[RedfishNode]:
    with RedfishNode(lab, PxeBoot(), console_log=console_path(master_paths, HOST)) as rf_node:
        yield rf_node


def perceus(lab: Lab, paths: Paths, *args: str, stdin: str = "", timeout: float = 120) -> tuple[int, str, str]:
    """The real CLI inside the lab namespace (the BMC listens on the namespace's loopback)."""
    proc = perceus_cli(paths, *args, netns=lab.name, stdin=stdin, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def power(lab: Lab, paths: Paths, action: str) -> dict[str, object]:
    code, out, err = perceus(lab, paths, "-y", "--json", "node", "power", action, HOST, "--timeout", "20")
    rows = json.loads(out or "[]")
    assert code == 0 and rows and rows[0]["ok"], f"power {action}: {out} {err}"
    assert str(rows[0]["bmc"]).startswith("redfish+http://")
    return dict(rows[0])


def test_power_on_boot_cycle_and_off_through_redfish(
    lab: Lab, master_paths: Paths, node: RedfishNode, record_time: Callable[[str, float], None]
) -> None:
    paths = master_paths
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=node.mac.upper(), hostname=HOST, group="cluster", vnfs=CAPSULE))
    assert perceus(lab, paths, "-y", "node", "set", "bmc", node.url, HOST)[0] == 0
    assert perceus(lab, paths, "-y", "node", "set", "bmc-password", "-", HOST, stdin=REDFISH_PASSWORD + "\n")[0] == 0
    bus: LabBus = start_bus(lab, paths, port=BUS_PORT)

    assert power(lab, paths, "status")["state"] == "off"
    assert node.qemu_pid() is None
    t = time.monotonic()
    assert power(lab, paths, "on")["state"] == "on"
    deadline = time.monotonic() + 10  # the bridge has started QEMU; its pidfile follows a moment later
    while (pid := node.qemu_pid()) is None:
        assert time.monotonic() < deadline, "power on did not start QEMU"
        time.sleep(0.1)
    record_time("redfish power on → QEMU running", time.monotonic() - t)
    try:
        stage1 = node.wait_for(r"agent_starting .*mode=stage1", 300)
        runtime = node.wait_for(r"agent_starting .*mode=runtime", 400, start=stage1.index)
        node.wait_for(r"node_welcomed|checked_in", 120, start=runtime.index)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{bus.log_tail()}")
    record_time("redfish power on → provisiond checked in", time.monotonic() - t)
    deadline = time.monotonic() + 30
    while True:
        with SQLiteStore(paths.database) as store:
            row = store.get(node.mac.upper())
        if row is not None and row.status == "ready":
            break
        assert time.monotonic() < deadline, f"{HOST} never ready on the master: {row}"
        time.sleep(0.5)
    assert power(lab, paths, "status")["state"] == "on"

    # Cycle: sushy-tools offers no PowerCycle, so perceus asks ForceRestart: the same QEMU resets in place.
    mark = len(node.serial.lines)
    t = time.monotonic()
    assert power(lab, paths, "cycle")["state"] == "cycling"
    try:
        again = node.wait_for(r"agent_starting .*mode=stage1", 240, start=mark)
        node.wait_for(r"node_welcomed", 120, start=again.index)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{bus.log_tail()}")
    record_time("redfish power cycle → stage one again", time.monotonic() - t)
    assert node.qemu_pid() == pid  # a reset, not a new process
    texts = [ln.text for ln in read(console_path(paths, HOST))]
    assert sum("agent_starting" in x and "mode=stage1" in x for x in texts) >= 2
    assert any(x.startswith("-- perceus: power cycle (cycling) via redfish+http://") for x in texts)

    t = time.monotonic()
    assert power(lab, paths, "off")["state"] == "off"
    deadline = time.monotonic() + 15
    while node.qemu_pid() is not None:
        assert time.monotonic() < deadline, "power off did not stop QEMU"
        time.sleep(0.1)
    record_time("redfish power off → QEMU gone", time.monotonic() - t)
    assert power(lab, paths, "status")["state"] == "off"
