"""Issue 5: a node boots stage one in QEMU, fetches a real capsule over the bus, kexecs into it, and the
runtime agent's `ready` check-in shows on the master.

The capsule is the stage-one image itself imported with `perceus vnfs import` (busybox, CPython, the agent and
the NIC modules of the same Debian kernel, built from Debian packages and cached between runs): its /init runs
the agent in the mode the command line names, and stage one's kexec hand-over says `perceus.mode=runtime`.
"""

from __future__ import annotations

import json
import os
import re
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
class CapsuleMaster:
    """perceus-bus in the lab namespace with one imported capsule that new nodes get."""

    paths: Paths
    proc: ManagedProcess
    endpoint: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", "import sys; from perceus.master.cli.main import main; sys.exit(main())"]
        dirs = ["--config-dir", str(self.paths.config_dir), "--state-dir", str(self.paths.state_dir)]
        return subprocess.run([*argv, *args, *dirs], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture
def master(lab: Lab, stage1_image: BuildResult, tmp_path: Path) -> Iterator[CapsuleMaster]:
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = mini", defaults))
    running = CapsuleMaster(paths, None, "")  # type: ignore[arg-type]
    t = time.monotonic()
    imported = running.cli("vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel),
                           "--name", "mini")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    import_s = time.monotonic() - t
    endpoint_file = paths.run / "bus.endpoint"
    argv = [sys.executable, "-m", "perceus.master.busd", "--config-dir", str(paths.config_dir),
            "--state-dir", str(paths.state_dir), "--bind", f"tcp://{lab.gateway}:9987",
            "--events", f"tcp://{lab.gateway}:0", "--foreground"]  # fmt: skip
    # The default port (the lab namespace is private): stage one's hand-over also passes 1.x `masterip=HOST`,
    # which the runtime agent reads as a second master on the default port.
    proc = lab.spawn("perceus-bus", argv, env=ENV)
    deadline = time.monotonic() + 30
    while not (endpoint_file.exists() and endpoint_file.read_text().count("\n") >= 2):
        assert proc.running(), f"perceus-bus exited: {proc.log.read_text() if proc.log else ''}"
        assert time.monotonic() < deadline, "perceus-bus did not write its endpoint"
        time.sleep(0.1)
    running.proc, running.endpoint = proc, endpoint_file.read_text().split()[0]
    running.import_seconds = import_s  # type: ignore[attr-defined]
    yield running


def test_stateless_node_boots_into_its_capsule_and_checks_in_ready(
    lab: Lab, master: CapsuleMaster, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    record_time("capsule import (stage-one image as capsule)", master.import_seconds)  # type: ignore[attr-defined]
    listing = json.loads(master.cli("vnfs", "list", "--json").stdout)
    assert listing[0]["name"] == "mini" and listing[0]["chunks"] > 1
    lab.start_dnsmasq()
    host_port = master.endpoint.removeprefix("tcp://")
    append = f"console=ttyS0 quiet panic=-1 perceus.master={host_port} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    try:
        fetched = node.wait_for(r"capsule_fetched", 300)
        record_time("capsule fetched + verified + unpacked", fetched.t)
        kexec = node.wait_for(r"kexec_started", 60)
        record_time("kexec started", kexec.t)
        ready = node.wait_for(r"checked_in", 300, start=kexec.index)
        record_time("runtime agent checked in", ready.t)
    except SerialTimeout:
        if not master.proc.running():
            log = master.proc.log.read_text(errors="replace") if master.proc.log else ""
            pytest.fail(f"perceus-bus died: {log[-1500:]}")
        raise
    deadline = time.monotonic() + 20
    while True:
        nodes = json.loads(master.cli("node", "list", "--json").stdout or "[]")
        mine = [n for n in nodes if str(n.get("nodeid", "")).lower() == node.mac]
        if mine and mine[0]["status"] == "ready":
            break
        assert time.monotonic() < deadline, f"node {node.mac} never ready on the master: {mine}"
        time.sleep(0.5)
    assert mine[0]["vnfs"] == "mini"
