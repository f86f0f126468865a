"""Issue 22 item 1: a hybrid capsule boots in QEMU; its hybridized directory is an NFSv4 mount from the master
(nfs-ganesha started by perceus-bus), the files read there hash as on the master, and the RAM image it boots is
smaller by the hybridized bytes.

The capsule is the stage-one image (busybox, CPython, the agent, the NIC and NFSv4 modules of the same Debian
kernel) with a directory of data added, imported twice: `mini` (stateless) and `hyb` (`--type hybrid
--hybridize` naming that directory).  The node boots stage one directly (no PXE: that chain has its own test),
fetches `hyb`, kexecs; provisiond mounts the directory before its first hello, and a `ready` node script
(sent by the master, run on the node) reports /proc/mounts and the files' SHA-256, which the test compares.
Then, as the peer in the same run, a second node boots the stateless `mini` (same tree, data in RAM).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.lab.lab import BRIDGE
from perceus.lab.qemu import node_mac
from perceus.master.config import Paths
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

DATA = "opt/hybrid-data"
CHECK = f"""#!/bin/sh
grep ' /{DATA} ' /proc/mounts
cd /{DATA} && sha256sum big.bin small.txt
"""


@pytest.fixture
def master(
    lab: Lab, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> Iterator[tuple[LabBus, Paths, dict[str, str]]]:
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    conf = paths.perceus_conf.read_text().replace("master network device = eth1", f"master network device = {BRIDGE}")
    paths.perceus_conf.write_text(conf.replace("manage dnsmasq = yes", "manage dnsmasq = no"))  # the lab's own
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = hyb", defaults))

    def cli(*args: str) -> str:
        done = perceus_cli(paths, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel), "--name", "mini")
    cli("vnfs", "mount", "mini")
    data = paths.vnfs / "mini/rootfs" / DATA
    data.mkdir(parents=True)
    (data / "big.bin").write_bytes(random.Random(22).randbytes(6 << 20))
    (data / "small.txt").write_text("read over NFSv4 from the master\n")
    cli("vnfs", "umount", "mini")
    hashes = {n: hashlib.sha256((data / n).read_bytes()).hexdigest() for n in ("big.bin", "small.txt")}
    (tmp_path / "hybridize").write_text(f"# what the node mounts over NFS\n/{DATA}\n")
    t = time.monotonic()
    cli("vnfs", "import", str(paths.vnfs / "mini"), "--name", "hyb", "--type", "hybrid",
        "--hybridize", str(tmp_path / "hybridize"))  # fmt: skip
    record_time("hybrid capsule import", time.monotonic() - t)
    script = paths.state_dir / "nodescripts/ready/vnfs/hyb/50-hybrid-check"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(CHECK)  # not executable: sent to the node as it is (an executable one runs on the master)
    bus = start_bus(lab, paths, port=9987)
    try:
        yield bus, paths, hashes
    finally:
        pid = paths.run / "ganesha.pid"
        bus.process.stop()  # stops ganesha with it
        assert not pid.exists() or not Path(f"/proc/{pid.read_text().strip()}").exists(), "ganesha left running"


def test_hybrid_capsule_mounts_its_directory_over_nfs(
    lab: Lab,
    master: tuple[LabBus, Paths, dict[str, str]],
    stage1_image: BuildResult,
    record_time: Callable[[str, float], None],
) -> None:
    bus, paths, hashes = master
    shows = {n: json.loads(bus.cli("--json", "vnfs", "show", n).stdout)[0] for n in ("mini", "hyb")}
    nfs = shows["hyb"]["nfs"]
    assert nfs["paths"] == [f"/{DATA}"] and nfs["bytes"] == (6 << 20) + len("read over NFSv4 from the master\n")
    saved = shows["mini"]["ram_image_bytes"] - shows["hyb"]["ram_image_bytes"]
    record_time(f"RAM image {shows['mini']['ram_image_bytes'] / 2**20:.1f} MiB stateless -> "
                f"{shows['hyb']['ram_image_bytes'] / 2**20:.1f} MiB hybrid (MiB saved)", saved / 2**20)  # fmt: skip
    assert nfs["bytes"] <= saved <= nfs["bytes"] + 4096  # smaller by the hybridized bytes (+ cpio headers)
    deadline = time.monotonic() + 15
    while (status := json.loads(bus.cli("--json", "info").stdout)["nfs"])["state"] != "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["exports"] == ["hyb"]

    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {bus.kernel_args} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    try:
        kexec = node.wait_for(r"kexec_started", 300)
        record_time("kexec started", kexec.t)
        mounted = node.wait_for(r"event=hybrid_mounts_done", 120, start=kexec.index)
        record_time("hybrid NFS mount done (from power-on)", mounted.t)
        welcomed = node.wait_for(r"node_welcomed", 60, start=mounted.index)
        record_time("hybrid: runtime agent welcomed (from power-on)", welcomed.t)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{bus.log_tail(4000)}")
    fetched = node.wait_for(r"capsule_fetched", 1).text
    mount_line = node.wait_for(r"event=hybrid_mounted", 1, start=kexec.index).text
    assert f"path=/{DATA}" in mount_line

    # The master's view: the node is ready (not hybrid_failed) and its ready script reported what it saw.
    deadline = time.monotonic() + 60
    while "event=node_scripts_done" not in (log := bus.log_tail(200_000)):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.5)
    report = next(ln for ln in log.splitlines() if "event=node_scripts_done" in ln)
    assert "state=ready status=0" in report, report
    assert re.search(rf"{re.escape(bus.host_port.split(':')[0])}:/perceus/hyb/{DATA} /{DATA} nfs4 ro", report), report
    for name, digest in hashes.items():
        assert f"{digest}  {name}" in report, report
    nodes = json.loads(bus.cli("node", "list", "--json").stdout)
    mine = [n for n in nodes if str(n.get("nodeid", "")).lower() == node.mac]
    assert mine and mine[0]["status"] == "ready" and mine[0]["vnfs"] == "hyb"
    assert os.path.exists(paths.vnfs / "hyb/nfs" / DATA / "big.bin")

    # The peer, same run: the stateless capsule of the same tree, the data in RAM.
    node.stop()
    assert bus.cli("node", "add", node_mac(lab.subnet.index, 1), "n0100", "--vnfs", "mini").returncode == 0
    peer = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    try:
        peer_kexec = peer.wait_for(r"kexec_started", 300)
        peer_welcomed = peer.wait_for(r"node_welcomed", 120, start=peer_kexec.index)
    except SerialTimeout as exc:
        pytest.fail(f"{exc}\n--- perceus-bus log tail:\n{bus.log_tail(4000)}")
    record_time("stateless peer: kexec started", peer_kexec.t)
    record_time("stateless peer: runtime agent welcomed (from power-on)", peer_welcomed.t)
    assert peer.serial.find(r"hybrid_mount") is None
    peer_fetched = peer.wait_for(r"capsule_fetched", 1).text

    def raw(line: str) -> int:
        m = re.search(r"raw_bytes=(\d+)", line)
        assert m, line
        return int(m.group(1))

    assert raw(peer_fetched) - raw(fetched) == saved  # the node fetched and holds that much less
