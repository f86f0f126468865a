"""Issue 19: a QEMU node behind an ipmi_sim BMC (QEMU's ipmi-bmc-extern chardev).  `perceus node power on`
starts the powered-off VM, which PXE-boots and checks in (stage one reporting the LAN address it read of its
own BMC over KCS); `power cycle` really restarts it (a second firmware banner and stage one again), SOL carries
its serial console, `perceus node log` shows the console next to the agent's phases, and `power off` really
stops QEMU.  Everything runs in the lab's namespace: the master, dnsmasq,
ipmi_sim and QEMU, and the `perceus` CLI talking to the BMC on the namespace's 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import Lab, PxeBoot, SerialTimeout
from perceus.lab.bmc import IPMI_PASSWORD, BmcNode
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.lab.demo import BUS_PORT, CAPSULE, prepare_master
from perceus.master.config import Paths
from perceus.master.power.consolelog import console_path, read
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

pytestmark = pytest.mark.vm
HOST = "bmc01"


@pytest.fixture
def master_paths(vm_host: None, tmp_path: Path) -> Paths:
    if shutil.which("ipmi_sim") is None:
        pytest.skip("needs OpenIPMI's ipmi_sim (Debian openipmi; scripts/setup installs it)")
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    prepare_master(paths, stage1_level=19, progress=print)
    return paths


@pytest.fixture
def node(lab: Lab, master_paths: Paths) -> Iterator[BmcNode]:
    with BmcNode(lab, PxeBoot(), console_log=console_path(master_paths, HOST)) as bmc_node:
        yield bmc_node


def perceus(lab: Lab, paths: Paths, *args: str, stdin: str = "", timeout: float = 120) -> tuple[int, str, str]:
    """The real CLI inside the lab namespace (the BMC is on the namespace's loopback)."""
    proc = perceus_cli(paths, *args, netns=lab.name, stdin=stdin, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def power(lab: Lab, paths: Paths, action: str) -> dict[str, object]:
    code, out, err = perceus(lab, paths, "-y", "--json", "node", "power", action, HOST)
    rows = json.loads(out or "[]")
    assert code == 0 and rows and rows[0]["ok"], f"power {action}: {out} {err}"
    return dict(rows[0])


def test_power_on_boot_cycle_console_and_off_through_ipmi_sim(
    lab: Lab, master_paths: Paths, node: BmcNode, record_time: Callable[[str, float], None]
) -> None:
    paths = master_paths
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=node.mac.upper(), hostname=HOST, group="cluster", vnfs=CAPSULE))
    assert perceus(lab, paths, "-y", "node", "set", "bmc", node.url, HOST)[0] == 0
    assert perceus(lab, paths, "-y", "node", "set", "bmc-password", "-", HOST, stdin=IPMI_PASSWORD + "\n")[0] == 0
    bus: LabBus = start_bus(lab, paths, port=BUS_PORT)

    assert power(lab, paths, "status")["state"] == "off"
    assert node.qemu_pid() is None
    t = time.monotonic()
    assert power(lab, paths, "on")["state"] == "on"
    deadline = time.monotonic() + 10
    while node.qemu_pid() is None:
        assert time.monotonic() < deadline, "ipmi_sim did not start QEMU"
        time.sleep(0.1)
    record_time("power on → QEMU running", time.monotonic() - t)
    try:
        # SeaBIOS and iPXE draw on VGA only: the serial console starts with the stage-one kernel.
        stage1 = node.wait_for(r"agent_starting .*mode=stage1", 300)
        runtime = node.wait_for(r"agent_starting .*mode=runtime", 400, start=stage1.index)
        node.wait_for(r"node_welcomed|checked_in", 120, start=runtime.index)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{bus.log_tail()}")
    record_time("power on → provisiond checked in (PXE, stage one, capsule, kexec)", time.monotonic() - t)
    deadline = time.monotonic() + 30
    while True:
        with SQLiteStore(paths.database) as store:
            row = store.get(node.mac.upper())
        if row is not None and row.status == "ready":
            break
        assert time.monotonic() < deadline, f"{HOST} never ready on the master: {row}"
        time.sleep(0.5)
    assert power(lab, paths, "status")["state"] == "on"

    # Stage one read the node's own BMC over KCS (/dev/ipmi0 → QEMU's isa-ipmi-kcs → ipmi-bmc-extern →
    # ipmi_sim) and reported the LAN address ipmi_sim was configured with; `node show` offers it.
    code, out, err = perceus(lab, paths, "--json", "node", "show", HOST)
    assert code == 0, err
    shown = json.loads(out)[0]["bmc"]
    assert shown["url"] == node.url
    reported = shown["reported"]
    said = [ln.text for ln in node.serial.lines if "bmc" in ln.text or "ipmi" in ln.text]
    assert reported is not None, f"no BMC reported; console: {said}"
    assert (reported["address"], reported["mac"]) == (node.bmc.lan_address, node.bmc.lan_mac.upper())
    assert reported["source"] == "static" and reported["stage"] == "stage1"
    code, out, _ = perceus(lab, paths, "node", "show", HOST)
    assert f"{HOST}: bmc={node.url} (bmc reported: {node.bmc.lan_address})" in out.splitlines()
    read_line = next(ln.text for ln in node.serial.lines if "bmc_lan_read" in ln.text)
    assert f"address={node.bmc.lan_address}" in read_line and "channel=1" in read_line
    took = re.search(r"duration_ms=([0-9.]+)", read_line)
    assert took is not None
    record_time(
        "stage one reading its BMC over KCS (Get Channel Info ×11, LAN parameters 3/5/4)", float(took[1]) / 1000
    )

    # Power cycle: the same QEMU process resets (firmware again, stage one again).
    mark = len(node.serial.lines)
    t = time.monotonic()
    assert power(lab, paths, "cycle")["state"] == "cycling"
    # SOL while it boots again (its own process, so no pyghmi session is shared with power): ipmi_sim
    # re-attaches to the serial port only every 10 s, so record for a while.
    code, sol_out, sol_err = perceus(lab, paths, "node", "console", HOST, "--capture", "25")
    assert code == 0, sol_err
    again = node.wait_for(r"agent_starting .*mode=stage1", 240, start=mark)
    node.wait_for(r"node_welcomed", 120, start=again.index)  # the second boot's phases reach the master
    record_time("power cycle → stage one again", time.monotonic() - t)
    assert node.qemu_pid() is not None
    sol_lines = [ln for ln in sol_out.splitlines() if ln.strip()]
    assert sol_lines, f"SOL carried nothing in 25 s: {sol_err}"
    console_texts = {ln.text for ln in node.serial.lines}
    assert any(ln.strip() in console_texts for ln in sol_lines[-20:]), sol_lines[-5:]

    # The console log: both boots, timestamped; `node log` shows the last one beside the agent's phases.
    logged = read(console_path(paths, HOST))
    texts = [ln.text for ln in logged]
    assert sum("agent_starting" in t and "mode=stage1" in t for t in texts) >= 2
    assert any(t.startswith("-- perceus: power on (on)") for t in texts)
    assert any(t.startswith("-- perceus: power cycle (cycling)") for t in texts)
    code, out, err = perceus(lab, paths, "node", "log", HOST, "--lines", "5000")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{HOST}: boot ")
    body = lines[1:]
    assert "-- perceus: power cycle" in body[0]  # the last boot starts at the cycle
    assert not any("-- perceus: power on (on)" in ln for ln in body)  # the first boot is not in it
    assert any("* " in ln for ln in body) and any("mode=stage1" in ln for ln in body)

    t = time.monotonic()
    assert power(lab, paths, "off")["state"] == "off"
    deadline = time.monotonic() + 15
    while node.qemu_pid() is not None:
        assert time.monotonic() < deadline, "power off did not stop QEMU"
        time.sleep(0.1)
    record_time("power off → QEMU gone", time.monotonic() - t)
    deadline = time.monotonic() + 10
    while power(lab, paths, "status")["state"] != "off":
        assert time.monotonic() < deadline
        time.sleep(0.5)
