"""Hybrid capsules' NFS part served by a real nfs-ganesha that a real perceus-bus starts and supervises, in
namespaces the test makes (issue 22 item 1).

`srv` holds perceus-bus on its veth end (10.77.22.1/24; `manage dnsmasq = no`), `node` the other end: a
userspace NFSv4 client there (`nfs-cat` from libnfs-utils; this host's kernel has no NFS client) reads the
hybridized files.  Also: a capsule's import reaches ganesha at once (`nfs_reload`), delete stops it (`manage
nfs = auto`), and a ganesha that cannot start (its port taken) is one `nfs_server_failed` line and shows in
`perceus info` and `perceus node status`.  Everything started is stopped by pid; both namespaces are deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.unit.capsule.conftest import make_tree

from perceus.lab.bus import namespace_roots
from perceus.master.bus.control import ENDPOINTS_FILE, poke, read_endpoints
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.netmgr.ganesha_process import find_ganesha

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        find_ganesha() is None or not shutil.which("nfs-cat"),
        reason="needs nfs-ganesha and libnfs-utils (scripts/setup)",
    ),
]

SUBNET = "10.77.22"
ENV = {**os.environ, "PYTHONPATH": namespace_roots()}
HOLD_PORT = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 2049))
s.listen()
print("held", flush=True)
time.sleep(120)
"""


@dataclass
class Srv:
    srv: str
    node: str
    paths: Paths
    bus: subprocess.Popen[bytes] | None
    log: Path

    def bus_log(self) -> str:
        return self.log.read_text(errors="replace")

    def start_bus(self) -> None:
        (self.paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.bus = subprocess.Popen(
                ["ip", "netns", "exec", self.srv, sys.executable, "-W", "error", "-m", "perceus.master.busd",
                 "--config-dir", str(self.paths.config_dir), "--state-dir", str(self.paths.state_dir),
                 "--bind", f"tcp://{SUBNET}.1:0", "--events", f"tcp://{SUBNET}.1:0", "--foreground",
                 "--security", "none"],
                stdout=out, stderr=subprocess.STDOUT, env=ENV,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while read_endpoints(self.paths.run) is None:
            assert self.bus.poll() is None and time.monotonic() < deadline, self.bus_log()
            time.sleep(0.05)

    def stop_bus(self) -> None:
        if self.bus is not None and self.bus.poll() is None:
            self.bus.send_signal(signal.SIGTERM)
            self.bus.wait(20)
        self.bus = None

    def nfs(self) -> dict[str, object]:
        reply = poke(self.paths.control_socket, "nfs_status", timeout=5.0)
        assert reply is not None and reply.get("ok"), reply
        status: dict[str, object] = reply["nfs"]
        return status

    def wait_nfs(self, state: str, timeout: float = 20.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while (status := self.nfs())["state"] != state:
            assert time.monotonic() < deadline, (status, self.bus_log())
            time.sleep(0.1)
        return status

    def cat(self, path: str) -> subprocess.CompletedProcess[bytes]:
        url = f"nfs://{SUBNET}.1{path}?version=4"
        return subprocess.run(["ip", "netns", "exec", self.node, "nfs-cat", url], capture_output=True, timeout=30)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def perceus(paths: Paths, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["-y", *argv], context=CliContext(paths=paths, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Srv]:
    tag = f"pf{os.getpid() % 100000}"
    ns_srv, ns_node, device = f"{tag}s", f"{tag}n", f"{tag}a"
    paths = Paths(tmp_path / "etc", tmp_path / "var")
    paths.ensure()
    text = paths.perceus_conf.read_text().replace("master network device = eth1", f"master network device = {device}")
    paths.perceus_conf.write_text(text.replace("manage dnsmasq = yes", "manage dnsmasq = no"))
    _ip("netns", "add", ns_srv)
    _ip("netns", "add", ns_node)
    running = Srv(ns_srv, ns_node, paths, None, paths.logs / "bus.log")
    paths.logs.mkdir(parents=True, exist_ok=True)
    try:
        _ip("link", "add", device, "type", "veth", "peer", "name", f"{tag}b")
        _ip("link", "set", device, "netns", ns_srv)
        _ip("link", "set", f"{tag}b", "netns", ns_node)
        for ns in (ns_srv, ns_node):
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns_srv, "addr", "add", f"{SUBNET}.1/24", "dev", device)
        _ip("-n", ns_node, "addr", "add", f"{SUBNET}.9/24", "dev", f"{tag}b")
        _ip("-n", ns_srv, "link", "set", device, "up")
        _ip("-n", ns_node, "link", "set", f"{tag}b", "up")
        yield running
    finally:
        running.stop_bus()
        subprocess.run(["ip", "netns", "del", ns_srv], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_node], capture_output=True)


def _capsule_tree(root: Path) -> Path:
    make_tree(root, files=3)
    (root / "usr/share/doc").mkdir()
    (root / "usr/share/doc/README").write_text("served read-only over NFSv4\n")
    (root / "etc").mkdir()
    (root / "etc/shadow").write_text("root:secret-hash:1::::::\n")
    return root


def test_bus_serves_a_hybrid_capsule_over_nfs_and_follows_import_and_delete(srv: Srv, tmp_path: Path) -> None:
    srv.start_bus()
    assert srv.nfs()["state"] == "off"  # manage nfs = auto: no hybrid capsule, no ganesha
    tree = _capsule_tree(tmp_path / "tree")
    (tmp_path / "list").write_text("/usr/share\n")
    t = time.monotonic()
    code, _, err = perceus(srv.paths, "vnfs", "import", str(tree), "--name", "hyb", "--type", "hybrid",
                           "--hybridize", str(tmp_path / "list"))  # fmt: skip
    assert code == 0, err
    status = srv.wait_nfs("running", 10)
    print(f"\nganesha serving {time.monotonic() - t:.2f} s after `vnfs import` started (import + nfs_reload)")
    assert status["exports"] == ["hyb"] and status["bind"] == f"{SUBNET}.1"
    conf = (srv.paths.state_dir / "nfs/ganesha.conf").read_text()
    assert f"Bind_addr = {SUBNET}.1;" in conf and f"CLIENT {{ Clients = {SUBNET}.0/24; Access_Type = RO; }}" in conf
    assert "Access_Type = None;" in conf and "Protocols = 4;" in conf and '"/perceus/hyb"' in conf
    assert (srv.paths.run / "ganesha.pid").is_file() and (srv.paths.state_dir / "nfs/recovery").is_dir()
    assert f'CCacheDir = "{srv.paths.state_dir}/nfs/ccache";' in conf  # not /var/run/ganesha

    got = srv.cat("/perceus/hyb/usr/share/doc/README")
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"served read-only over NFSv4\n"
    big = srv.cat("/perceus/hyb/usr/share/big.dat")
    assert (
        hashlib.sha256(big.stdout).hexdigest() == hashlib.sha256((tree / "usr/share/big.dat").read_bytes()).hexdigest()
    )
    # Only the hybridized directories are exported: the capsule's other files are not reachable.
    assert srv.cat("/perceus/hyb/etc/shadow").returncode != 0
    assert srv.cat("/perceus/hyb/usr/lib/lib0001.so").returncode != 0

    shown = perceus(srv.paths, "info")[1]
    assert f"running, pid {status['pid']}, exports hyb on {SUBNET}.1" in shown

    code, _, err = perceus(srv.paths, "vnfs", "delete", "hyb")
    assert code == 0, err
    srv.wait_nfs("off", 10)
    assert "event=nfs_server_not_needed" in srv.bus_log()


def test_a_ganesha_that_cannot_start_is_reported(srv: Srv, tmp_path: Path) -> None:
    tree = _capsule_tree(tmp_path / "tree")
    (tmp_path / "list").write_text("/usr/share\n")
    assert perceus(srv.paths, "vnfs", "import", str(tree), "--name", "hyb", "--type", "hybrid",
                   "--hybridize", str(tmp_path / "list"))[0] == 0  # fmt: skip
    assert perceus(srv.paths, "node", "add", "52:54:00:22:00:01", "n0001", "--vnfs", "hyb")[0] == 0
    holder = subprocess.Popen(["ip", "netns", "exec", srv.srv, sys.executable, "-c", HOLD_PORT, f"{SUBNET}.1"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        srv.start_bus()
        status = srv.wait_nfs("failed", 20)
        assert "Error binding" in str(status["error"]), status
        lines = [ln for ln in srv.bus_log().splitlines() if "event=nfs_server_failed" in ln]
        assert len(lines) == 1 and "reason=" in lines[0]  # one line, not one per retry
        code, out, err = perceus(srv.paths, "info")
        assert code == 0 and "FAILED: ganesha.nfsd exited" in out
        code, out, err = perceus(srv.paths, "node", "status")
        assert "NFS server for hybrid capsules is not serving" in err and "NFS-DOWN" in out
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # The port is free again: the back-off retry brings it up without anyone asking.
    srv.wait_nfs("running", 90)
    assert json.loads(perceus(srv.paths, "--json", "info")[1])["nfs"]["state"] == "running"
