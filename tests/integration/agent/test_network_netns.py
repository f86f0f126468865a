"""Network bring-up (pyroute2 DHCP client, address, default route) against a real dnsmasq over a veth pair.

Two namespaces made by the test: `srv` holds dnsmasq on 10.77.9.1/24, `node` the other veth end.  The agent's
bring-up runs in a subprocess under `ip netns exec node`, exactly as it would on a node's only NIC.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import agent_env

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(not shutil.which("dnsmasq") or not shutil.which("ip"), reason="needs dnsmasq and ip"),
]

BRING_UP = """
import json, sys, time
from perceus.agent import cmdline, network
from perceus import logsetup
logsetup.configure(level="debug")
start = time.monotonic()
lease = network.bring_up(cmdline.parse(sys.argv[1]), rounds=1, carrier_timeout=5, dhcp_timeout=15)
print(json.dumps({"lease": lease.__class__.__name__, **{k: getattr(lease, k) for k in lease.__slots__},
                  "seconds": time.monotonic() - start, "pyroute2": "pyroute2" in sys.modules}))
"""


@dataclass
class Lab:
    node_ns: str
    mac: str
    leases: Path


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    tag = f"pa{os.getpid() % 100000}"
    srv, node = f"{tag}s", f"{tag}n"
    _ip("netns", "add", srv)
    _ip("netns", "add", node)
    dnsmasq: subprocess.Popen[bytes] | None = None
    try:
        _ip("link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b")
        _ip("link", "set", f"{tag}a", "netns", srv)
        _ip("link", "set", f"{tag}b", "netns", node)
        _ip("-n", node, "link", "set", f"{tag}b", "name", "eth0")
        _ip("-n", srv, "addr", "add", "10.77.9.1/24", "dev", f"{tag}a")
        _ip("-n", srv, "link", "set", f"{tag}a", "up")
        shown = subprocess.run(["ip", "-n", node, "-j", "link", "show", "eth0"], check=True, capture_output=True,
                               text=True).stdout  # fmt: skip
        address = json.loads(shown)[0]["address"].upper()
        leases = tmp_path / "leases"
        dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", srv, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
             f"--interface={tag}a", "--bind-interfaces", "--dhcp-range=10.77.9.100,10.77.9.150,255.255.255.0,1h",
             "--dhcp-option=option:router,10.77.9.1", f"--dhcp-leasefile={leases}", "--no-ping",
             f"--pid-file={tmp_path / 'dnsmasq.pid'}", "--log-facility=-", "--log-dhcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield Lab(node, address, leases)
    finally:
        if dnsmasq is not None:
            dnsmasq.terminate()
            dnsmasq.wait(10)
        subprocess.run(["ip", "netns", "del", srv], capture_output=True)
        subprocess.run(["ip", "netns", "del", node], capture_output=True)


def _bring_up(lab: Lab, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", lab.node_ns, sys.executable, "-W", "error", "-c", BRING_UP, line],
                          env=agent_env(), capture_output=True, text=True, timeout=60)  # fmt: skip


def _routes(lab: Lab) -> str:
    return subprocess.run(["ip", "-n", lab.node_ns, "route"], capture_output=True, text=True).stdout


def test_dhcp_lease_configures_address_and_route(lab: Lab) -> None:
    result = _bring_up(lab, "")
    assert result.returncode == 0, result.stderr
    lease = json.loads(result.stdout.splitlines()[-1])
    print(f"\ndhcp bring-up took {lease['seconds']:.2f}s")  # shown with -s; a fact, not an assertion
    assert lease["iface"] == "eth0" and lease["mac"] == lab.mac
    assert lease["ip"].startswith("10.77.9.") and lease["prefixlen"] == 24
    assert lease["gateway"] == "10.77.9.1" and lease["server_id"] == "10.77.9.1"
    assert lease["static"] is False
    assert "default via 10.77.9.1 dev eth0" in _routes(lab)
    deadline = time.monotonic() + 5
    while lab.mac.lower() not in lab.leases.read_text(errors="replace").lower():
        assert time.monotonic() < deadline, "dnsmasq did not record the lease"
        time.sleep(0.1)
    assert "event=dhcp_lease" in result.stderr


def test_static_network_from_cmdline(lab: Lab) -> None:
    result = _bring_up(lab, "perceus.net=10.77.9.42/24,10.77.9.1,eth0")
    assert result.returncode == 0, result.stderr
    lease = json.loads(result.stdout.splitlines()[-1])
    assert (lease["ip"], lease["static"], lease["server_id"]) == ("10.77.9.42", True, "")
    assert lease["pyroute2"] is False  # the hand-over path: sysfs + raw rtnetlink (agent/rtnl.py)
    shown = subprocess.run(["ip", "-n", lab.node_ns, "addr", "show", "eth0"], capture_output=True, text=True).stdout
    assert "inet 10.77.9.42/24 brd 10.77.9.255" in shown and "state UP" in shown
    assert "default via 10.77.9.1 dev eth0" in _routes(lab)
    again = _bring_up(lab, "perceus.net=10.77.9.43/24,10.77.9.1,eth0")  # replace, as a second boot's hand-over
    assert again.returncode == 0, again.stderr
    shown = subprocess.run(["ip", "-n", lab.node_ns, "addr", "show", "eth0"], capture_output=True, text=True).stdout
    assert "10.77.9.43/24" in shown
    bad = _bring_up(lab, "perceus.net=10.77.9.44/24,10.99.0.1,eth0")  # gateway off the link: the kernel's error
    assert bad.returncode == 1 and "NetworkError: static network 10.77.9.44/24,10.99.0.1,eth0" in bad.stderr


def test_dhcp_eth_filter_that_matches_nothing_fails_clearly(lab: Lab) -> None:
    result = _bring_up(lab, "dhcp_eth=eth7")
    assert result.returncode == 1
    assert "NetworkError: no network: no lease on any link after 1 rounds" in result.stderr
