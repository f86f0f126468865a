"""Faults in the emulated fleet: the master killed mid-transfer, 1 % packet loss, a node killed mid-fetch.

Whatever happens, a node holds only verified capsule bytes, and no node ends half-provisioned without the
fleet (and the master) saying where it stopped.
"""

from __future__ import annotations

import json
import time

from perceus.lab.bus import perceus_cli
from perceus.lab.fleet import FleetRun

from .conftest import NEEDS, verify_node

pytestmark = NEEDS


def fetching(run: FleetRun, at_least: int = 1) -> bool:
    """True once `at_least` nodes are mid-transfer (fetch started, no kexec yet)."""
    return sum(1 for t in run.tracks if "capsule" in t.times and "kexec" not in t.times) >= at_least


def all_ready(run: FleetRun) -> None:
    stuck = [f"{t.name}: {t.step} {t.failed}" for t in run.tracks if not t.ready]
    assert not stuck, stuck


def test_master_killed_mid_transfer_nodes_resume(fleet: FleetRun) -> None:
    fleet.new_round(pacing=True)
    fleet.storm(until=lambda r: fetching(r, 2))
    fleet.kill_bus()
    time.sleep(3)
    fleet.start_bus()
    fleet.watch()
    all_ready(fleet)
    for i in range(len(fleet.tracks)):
        verify_node(fleet, i)
    texts = [t.console.read_text() for t in fleet.tracks]
    # The interrupted transfers went on from what the nodes had already verified (journal or open fetch).
    assert any("chunk_retry" in x or ("reused=" in x and "reused=0" not in x) for x in texts)


def test_one_percent_loss_on_node_links(fleet: FleetRun) -> None:
    fleet.new_round(pacing=True)
    fleet.net.set_loss(0.01)
    try:
        fleet.storm()
    finally:
        fleet.net.set_loss(0.0)
    all_ready(fleet)
    for i in range(len(fleet.tracks)):
        verify_node(fleet, i)


def test_node_killed_mid_fetch_is_reported_then_reboots(fleet: FleetRun) -> None:
    fleet.new_round(pacing=True)
    fleet.storm(until=lambda r: fetching(r, 1))
    victim = next(i for i, t in enumerate(fleet.tracks) if "capsule" in t.times and "kexec" not in t.times)
    fleet.kill(victim)
    fleet.watch()
    others = [t for i, t in enumerate(fleet.tracks) if i != victim]
    assert all(t.ready for t in others), [f"{t.name}: {t.step}" for t in others]
    dead = fleet.tracks[victim]
    assert dead.summary(fleet.origin)["failed"] == "exited -9" and "kexec" not in dead.times
    # The master says where it stopped: its last phase report is the capsule phase, started, never finished.
    status = perceus_cli(fleet.paths, "--json", "node", "status", dead.hostname)
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)[0]
    assert row["hostname"] == dead.hostname and "capsule" in json.dumps(row)
    # Powered on again: a fresh tmpfs, a new boot, provisioned completely (after the master's liveness probe
    # of the dead session: security/gate.py, PROBE_SECONDS).
    fleet.power_on(victim)
    fleet.watch(timeout=120)
    assert fleet.tracks[victim].ready
    verify_node(fleet, victim)
