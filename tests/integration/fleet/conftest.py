"""Fixtures for the emulated fleet: one set-up (namespaces, master, capsule) shared by the fault tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.lab.fleet import FleetOptions, FleetRun
from perceus.lab.shaping import Rate
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.netmgr.process import find_dnsmasq
from perceus.protocol.capsule import digest

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
    """6 nodes, a 6 MiB capsule, a 40 Mbit/s uplink and 20 Mbit/s node links: 3 transfer slots, so nodes queue."""
    workdir = tmp_path_factory.mktemp("fleet") / "run"
    # A star (`capsule swarm = no`: swarm members bypass the transfer slots these tests are about; the swarm
    # has its own tests).  A node killed in stage one has announced provisiond's key; the gate then keeps its
    # node for the kexec window (120 s by default) before a new boot may take it: 15 s keeps the reboot short.
    options = FleetOptions(nodes=6, capsule_mb=6.0, uplink=Rate(40), node_rate=Rate(20), timeout=120, index=7,
                           master_conf="capsule swarm = no\nbus kexec window = 15\n")  # fmt: skip
    with FleetRun(workdir, options, tag=f"plft{os.getpid() % 10000}") as run:
        yield run


def verify_node(run: FleetRun, i: int) -> None:
    """What node `i` holds in its tmpfs is exactly the signed manifest's bytes (plus stage one's hand-over)."""
    manifest = current(Store(run.paths).existing("fleet"))
    assert manifest is not None
    root = Path(f"/proc/{run.tracks[i].pid}/root/run/perceus/capsule")
    assert digest((root / "kernel").read_bytes()) == manifest.kernel.hash
    rootfs = (root / "rootfs.cpio").read_bytes()
    assert digest(rootfs[: manifest.rootfs.size]) == manifest.rootfs.hash
    tail = rootfs[manifest.rootfs.size :]
    assert not tail.strip(b"\0") or b"etc/perceus/session.key" in tail  # only the session hand-over follows
