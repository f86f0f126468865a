"""Fixtures for the capsule swarm in the emulated fleet: one set-up shared by the swarm tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from perceus.lab.fleet import FleetOptions, FleetRun
from perceus.lab.shaping import Rate
from perceus.master.netmgr.process import find_dnsmasq

NEEDS = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        find_dnsmasq() is None or not all(shutil.which(t) for t in ("ip", "tc", "iptables")),
        reason="needs dnsmasq, ip, tc and iptables",
    ),
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetRun]:
    """6 nodes, a 6 MiB capsule, a 40 Mbit/s master uplink and 20 Mbit/s node links."""
    workdir = tmp_path_factory.mktemp("swarm") / "run"
    options = FleetOptions(nodes=6, capsule_mb=6.0, uplink=Rate(40), node_rate=Rate(20), timeout=180, index=9)
    with FleetRun(workdir, options, tag=f"plsw{os.getpid() % 10000}") as run:
        yield run
