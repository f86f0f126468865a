"""The network manager against a real dnsmasq, supervised by a real perceus-bus, in namespaces the test makes.

Two namespaces joined by a veth pair: `srv` holds perceus-bus (which starts dnsmasq on its veth end,
10.77.11.1/24 + fd77:b::1/64), `node` the other end as eth0, where the agent's own pyroute2 DHCP client runs.
Nothing reaches the host's interfaces; everything the test started is stopped by pid, then both namespaces
are deleted.
"""

from __future__ import annotations

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

from perceus.lab.bus import namespace_roots
from perceus.master.bus.control import ENDPOINTS_FILE, read_endpoints
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.netmgr.files import NetFiles
from perceus.master.netmgr.process import find_dnsmasq

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(find_dnsmasq() is None or not shutil.which("ip"), reason="needs dnsmasq and ip"),
]

SUBNET = "10.77.11"
ENV = {**os.environ, "PYTHONPATH": namespace_roots()}
BRING_UP = """
import json, sys
from perceus.agent import cmdline, network
lease = network.bring_up(cmdline.parse(""), rounds=1, carrier_timeout=5, dhcp_timeout=15)
print(json.dumps({"ip": lease.ip, "mac": lease.mac}))
"""
HELLO = """
import sys, zmq
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.connect(sys.argv[1])
sock.send(codec.encode(Hello(macs=(sys.argv[2],), state="init", stage=Stage.STAGE1, boot_id="b1", rid=1)))
ready = sock.poll(10000)
print(type(codec.decode(sock.recv())).__name__ if ready else "no reply")
sock.close(linger=0)
"""


@dataclass
class Net:
    srv: str
    node: str
    device: str
    node_mac: str
    paths: Paths
    files: NetFiles
    bus: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    def bus_log(self) -> str:
        return self.log.read_text(errors="replace")

    def dnsmasq_pid(self, timeout: float = 10.0, other_than: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid = int(self.files.pidfile.read_text().strip())
                if pid != other_than and Path(f"/proc/{pid}").exists():
                    return pid
            except (OSError, ValueError):
                pass
            assert self.bus.poll() is None, self.bus_log()
            time.sleep(0.05)
        raise AssertionError(f"dnsmasq did not (re)start: {self.bus_log()}")


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _in_ns(ns: str, code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", ns, sys.executable, "-W", "error", "-c", code, *args]
    return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout)


def _perceus(paths: Paths, *argv: str) -> int:
    return main(["-y", "-q", *argv], context=CliContext(paths=paths))


def _start_bus(paths: Paths, srv: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """perceus-bus in the `srv` namespace, logging to `log` (appended); returns it and its ROUTER endpoint."""
    (paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)  # a killed bus leaves its own behind
    with log.open("ab") as out:
        bus = subprocess.Popen(
            ["ip", "netns", "exec", srv, sys.executable, "-W", "error", "-m", "perceus.master.busd",
             "--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir),
             "--bind", f"tcp://{SUBNET}.1:0", "--events", f"tcp://{SUBNET}.1:0", "--foreground",
             "--security", "none"],
            stdout=out, stderr=subprocess.STDOUT, env=ENV,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while (endpoints := read_endpoints(paths.run)) is None:
        assert bus.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return bus, endpoints[0]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    tag = f"pn{os.getpid() % 100000}"
    srv, node, device = f"{tag}s", f"{tag}n", f"{tag}a"
    paths = Paths(tmp_path / "etc", tmp_path / "var")
    paths.ensure()
    text = paths.perceus_conf.read_text().replace("master network device = eth1", f"master network device = {device}")
    # user = root: pytest's tmp dirs are 0700, and dnsmasq re-reads the hosts file after dropping privileges.
    paths.perceus_conf.write_text(
        text + f"dnsmasq user = root\ndhcp log = yes\ndhcp range start = {SUBNET}.100\ndhcp range end = {SUBNET}.150\n"
    )
    files = NetFiles(paths)
    _ip("netns", "add", srv)
    _ip("netns", "add", node)
    bus: subprocess.Popen[bytes] | None = None
    running: Net | None = None
    try:
        _ip("link", "add", device, "type", "veth", "peer", "name", f"{tag}b")
        _ip("link", "set", device, "netns", srv)
        _ip("link", "set", f"{tag}b", "netns", node)
        _ip("-n", node, "link", "set", f"{tag}b", "name", "eth0")
        _ip("-n", srv, "link", "set", "lo", "up")
        _ip("-n", srv, "addr", "add", f"{SUBNET}.1/24", "dev", device)
        _ip("-n", srv, "-6", "addr", "add", "fd77:b::1/64", "dev", device, "nodad")
        _ip("-n", srv, "link", "set", device, "up")
        node_mac = json.loads(_ip("-n", node, "-j", "link", "show", "eth0"))[0]["address"].upper()
        log = paths.logs / "bus.log"
        bus, endpoint = _start_bus(paths, srv, log)
        running = Net(srv, node, device, node_mac, paths, files, bus, endpoint, log)
        running.dnsmasq_pid()
        yield running
    finally:
        for proc in (bus, running.bus if running is not None else None):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        subprocess.run(["ip", "netns", "del", srv], capture_output=True)
        subprocess.run(["ip", "netns", "del", node], capture_output=True)


def _dhcp(net: Net) -> dict[str, str]:
    _ip("-n", net.node, "addr", "flush", "dev", "eth0")
    result = _in_ns(net.node, BRING_UP)
    assert result.returncode == 0, result.stderr
    lease: dict[str, str] = json.loads(result.stdout.splitlines()[-1])
    return lease


def _wait_for_line(path: Path, line: str, timeout: float) -> float:
    start = time.monotonic()
    while line not in path.read_text().splitlines():
        assert time.monotonic() - start < timeout, f"{line!r} not in {path}: {path.read_text()}"
        time.sleep(0.01)
    return time.monotonic() - start


def test_generated_config_passes_dnsmasq_test(net: Net) -> None:
    code = "import sys; from perceus.master.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["--config-dir", str(net.paths.config_dir), "--state-dir", str(net.paths.state_dir)]
    result = _in_ns(net.srv, code, *args, "configure", "dhcpd", "--test")
    assert result.returncode == 0, result.stderr
    assert "dnsmasq: syntax check OK." in result.stdout
    assert f"{net.device} {SUBNET}.1/24, range {SUBNET}.100-{SUBNET}.150" in result.stdout
    conf = net.files.conf.read_text().splitlines()
    assert "enable-ra" in conf and "dhcp-range=fd77:b::,ra-only,64" in conf
    # perceus-bus wrote boot.ipxe with its live endpoint, not perceus.conf's default port
    port = net.endpoint.rpartition(":")[2]
    assert f"perceus.master={SUBNET}.1:{port}" in (net.files.tftp / "boot.ipxe").read_text()


def test_static_lease_follows_node_set_ip(net: Net) -> None:
    assert _perceus(net.paths, "node", "add", net.node_mac, "n0042", "--ip", f"{SUBNET}.42") == 0
    _wait_for_line(net.files.hosts, f"{net.node_mac.lower()},{SUBNET}.42,n0042", 1.0)
    lease = _dhcp(net)
    assert lease == {"ip": f"{SUBNET}.42", "mac": net.node_mac}

    assert _perceus(net.paths, "node", "set", "ip", f"{SUBNET}.43", "n0042") == 0
    took = _wait_for_line(net.files.hosts, f"{net.node_mac.lower()},{SUBNET}.43,n0042", 1.0)
    print(f"\nhosts file updated {took * 1000:.0f} ms after `node set ip` returned")
    assert _dhcp(net)["ip"] == f"{SUBNET}.43"  # a new DHCP exchange gets the new address
    assert "event=dnsmasq_hosts_written reason=nodes_changed hosts=1 hup " in net.bus_log()
    leases = net.files.leases.read_text()
    assert f"{SUBNET}.43 n0042" in leases


def test_enrolled_node_gets_its_name_within_a_second(net: Net) -> None:
    mac = "52:54:00:77:0B:09"
    result = _in_ns(net.srv, HELLO, net.endpoint, mac)
    # enrolled either way; `Wait` when no capsule is configured for it yet
    assert result.returncode == 0 and result.stdout.strip() in ("Welcome", "Wait"), result.stderr
    took = _wait_for_line(net.files.hosts, f"{mac.lower()},n0000", 1.0)
    print(f"\nhosts file has the enrolled node {took * 1000:.0f} ms after the master's reply")
    deadline = time.monotonic() + 2  # the bus logs the write just after making it: a moment later
    while "reason=node_enrolled" not in net.bus_log():
        assert time.monotonic() < deadline, net.bus_log()
        time.sleep(0.01)


def test_dnsmasq_restarted_when_it_dies_and_stopped_with_the_bus(net: Net) -> None:
    first = net.dnsmasq_pid()
    os.kill(first, signal.SIGKILL)  # the dnsmasq our bus started: by pid
    second = net.dnsmasq_pid(timeout=5, other_than=first)
    log = net.bus_log()
    assert "dnsmasq_exited" in log and "restarts=1" in log
    net.bus.send_signal(signal.SIGTERM)
    assert net.bus.wait(15) == 0
    assert not Path(f"/proc/{second}").exists() or "zombie" in Path(f"/proc/{second}/status").read_text().lower()
    assert "dnsmasq_stopped" in net.bus_log()


def test_dnsmasq_left_by_a_killed_bus_is_stopped_by_the_next_one(net: Net) -> None:
    stale = net.dnsmasq_pid()
    net.bus.send_signal(signal.SIGKILL)  # no clean-up: its dnsmasq (own session) lives on with the ports
    net.bus.wait(10)
    assert Path(f"/proc/{stale}").exists()
    net.bus, net.endpoint = _start_bus(net.paths, net.srv, net.log)
    fresh = net.dnsmasq_pid(timeout=10, other_than=stale)
    assert fresh != stale and not Path(f"/proc/{stale}").exists()
    assert "dnsmasq_stale_stopped" in net.bus_log() and f"pid={stale}" in net.bus_log()
