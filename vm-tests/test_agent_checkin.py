"""Issue 4 (a): an unknown node boots stage one in QEMU, gets DHCP in the lab, checks in with perceus-bus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, ManagedProcess, SerialTimeout
from perceus.master.config import Paths
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / d) for d in ("agent", "stage1", "master"))}


@dataclass
class LabBus:
    """perceus-bus running inside the lab namespace, bound to the bridge address."""

    paths: Paths
    proc: ManagedProcess
    endpoint: str

    @property
    def host_port(self) -> str:
        return self.endpoint.removeprefix("tcp://")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real `perceus` CLI against this bus's config and state."""
        argv = [sys.executable, "-c", "import sys; from perceus.master.cli.main import main; sys.exit(main())"]
        dirs = ["--config-dir", str(self.paths.config_dir), "--state-dir", str(self.paths.state_dir)]
        return subprocess.run([*argv, *args, *dirs], capture_output=True, text=True, env=ENV, timeout=60)


@pytest.fixture
def lab_bus(lab: Lab, tmp_path: Path) -> Iterator[LabBus]:
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    endpoint_file = paths.run / "bus.endpoint"
    argv = [sys.executable, "-m", "perceus.master.busd", "--config-dir", str(paths.config_dir),
            "--state-dir", str(paths.state_dir), "--bind", f"tcp://{lab.gateway}:0",
            "--events", f"tcp://{lab.gateway}:0", "--foreground"]  # fmt: skip
    proc = lab.spawn("perceus-bus", argv, env=ENV)
    deadline = time.monotonic() + 30
    while not (endpoint_file.exists() and endpoint_file.read_text().count("\n") >= 2):
        assert proc.running(), f"perceus-bus exited: {proc.log.read_text() if proc.log else ''}"
        assert time.monotonic() < deadline, "perceus-bus did not write its endpoint"
        time.sleep(0.05)
    yield LabBus(paths, proc, endpoint_file.read_text().split()[0])


def test_unknown_node_boots_gets_dhcp_and_checks_in(
    lab: Lab, lab_bus: LabBus, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 perceus.master={lab_bus.host_port} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append))
    lease = node.wait_for(r"dhcp_lease iface=eth0 ip=10\.77\.0\.", 150)
    record_time("DHCP lease", lease.t)
    try:
        answered = node.wait_for(r"master_says_wait|node_welcomed", 60)
    except SerialTimeout:
        if not lab_bus.proc.running():
            log = lab_bus.proc.log.read_text(errors="replace") if lab_bus.proc.log else ""
            pytest.fail(f"perceus-bus died while the node checked in: {log[-1500:]}")
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
    assert mine[0]["hostname"], mine[0]  # auto-assigned name (n0000 with the default policy)
    assert mine[0]["status"] in ("init", "pending", "enrolled"), mine[0]
