"""Fixtures for perceus-web: a store with a few nodes, pending nodes and a boot timeline; the real process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from perceus.lab.bus import python_env
from perceus.master.config import Paths
from perceus.master.inventory import Disk, Inventory
from perceus.master.store import open_store
from perceus.master.store.models import ContactUpdate, EnrollRequest, InventoryReport, NewNode, PhaseEvent
from perceus.web.client import RunningWeb, start_web

_CLI = "import sys; from perceus.master.cli.main import main; sys.exit(main())"


def mac(i: int) -> str:
    return f"52:54:00:AA:{i >> 8:02X}:{i & 0xFF:02X}"


@pytest.fixture
def fleet(paths: Paths) -> Paths:
    """Six nodes in two groups (some checked in, one failed boot, one with an inventory), two waiting for approval."""
    with open_store(paths) as store:
        for i in range(6):
            store.add(
                NewNode(
                    nodeid=mac(i),
                    hostname=f"n{i:04d}",
                    group="gpu" if i % 3 == 0 else "cluster",
                    ip=f"10.0.0.{10 + i}",
                    macs=(mac(i),),
                    attrs={"cpu": f"{4 + i} cores"},
                )
            )
        store.record_contacts(
            [
                ContactUpdate(
                    nodeid=mac(i),
                    status="ready",
                    ip=f"10.0.0.{10 + i}",
                    t=1_800_000_000.0 + i,
                    boot_id=f"b{i}",
                    phase="runtime",
                )
                for i in range(4)
            ]
        )
        store.record_events(
            [
                PhaseEvent(mac(1), "b1", "dhcp", 100.0, done=False),
                PhaseEvent(mac(1), "b1", "dhcp", 101.5),
                PhaseEvent(mac(1), "b1", "enroll", 101.6),
                PhaseEvent(mac(1), "b1", "capsule", 102.0, done=False),
                PhaseEvent(mac(1), "b1", "capsule", 108.0, ok=False, detail="manifest signature mismatch"),
            ]
        )
        inv = Inventory(
            cpu_model="Xeon Gold 6248",
            cpu_count=2,
            memory=192 * 2**30,
            disks=(Disk("sda", 480 * 10**9), Disk("sdb", 480 * 10**9)),
            vendor="Dell",
            product="R640",
        )
        store.record_inventories([InventoryReport(mac(4), "runtime", "b4", 1_800_000_004.0, inv)])
        for i in (100, 101):
            store.note_pending(EnrollRequest(nodeid=mac(i), macs=(mac(i),)), f"10.0.1.{i - 99}", 1_800_000_100.0)
    return paths


def cli_json(paths: Paths, *args: str) -> Any:
    """`perceus --json ARGS` as a subprocess, parsed."""
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    out = subprocess.run(
        [sys.executable, "-c", _CLI, *dirs, "--json", *args],
        capture_output=True,
        text=True,
        env=python_env(),
        timeout=60,
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def web(fleet: Paths) -> Iterator[RunningWeb]:
    running = start_web(fleet, "--interval", "0.2")
    yield running
    running.stop()
