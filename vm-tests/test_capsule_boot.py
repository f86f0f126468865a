"""Issue 5: a node boots stage one in QEMU, fetches a real capsule over the bus, kexecs into it, and the
runtime agent's `ready` check-in shows on the master.

The capsule is the stage-one image itself imported with `perceus vnfs import` (busybox, CPython, the agent and
the NIC modules of the same Debian kernel, built from Debian packages and cached between runs): its /init runs
the agent in the mode the command line names, and stage one's kexec hand-over says `perceus.mode=runtime`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.master.config import Paths
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm


@pytest.fixture
def master(
    lab: Lab, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> Iterator[LabBus]:
    """perceus-bus in the lab with capsule `mini` imported and given to every new node (defaults.conf)."""
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = mini", defaults))
    t = time.monotonic()
    imported = perceus_cli(paths, "vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel),
                           "--name", "mini")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    record_time("capsule import (stage-one image as capsule)", time.monotonic() - t)
    # The default port (the lab namespace is private): stage one's hand-over also passes 1.x `masterip=HOST`,
    # which the runtime agent reads as a second master on the default port.
    yield start_bus(lab, paths, port=9987)


def test_stateless_node_boots_into_its_capsule_and_checks_in_ready(
    lab: Lab, master: LabBus, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    listing = json.loads(master.cli("vnfs", "list", "--json").stdout)
    assert listing[0]["name"] == "mini" and listing[0]["chunks"] > 1
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {master.kernel_args} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    try:
        fetched = node.wait_for(r"capsule_fetched", 300)
        record_time("capsule fetched + verified + unpacked", fetched.t)
        kexec = node.wait_for(r"kexec_started", 60)
        record_time("kexec started", kexec.t)
        # The capsule's own /init (unpacked from our cpio stream by the runtime kernel) starts the agent.
        runtime = node.wait_for(r"perceus-init: starting agent", 120, start=kexec.index)
        record_time("capsule /init started the runtime agent", runtime.t)
    except SerialTimeout as exc:
        state = "running" if master.process.running() else "dead"
        pytest.fail(f"{exc}\n--- perceus-bus ({state}) log tail:\n{master.log_tail()}")
    # The bare capsule has no udev/networkd: provisiond loads the NIC driver and applies the address stage one
    # handed over (perceus.net=) itself, then says hello; its periodic check-ins follow, jittered.
    ready = node.wait_for(r"node_welcomed|checked_in", 120, start=runtime.index)
    record_time("runtime agent welcomed (first contact)", ready.t)
    deadline = time.monotonic() + 20
    while True:
        nodes = json.loads(master.cli("node", "list", "--json").stdout or "[]")
        mine = [n for n in nodes if str(n.get("nodeid", "")).lower() == node.mac]
        if mine and mine[0]["status"] == "ready":
            break
        assert time.monotonic() < deadline, f"node {node.mac} never ready on the master: {mine}"
        time.sleep(0.5)
    assert mine[0]["vnfs"] == "mini"
