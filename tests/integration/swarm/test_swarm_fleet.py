"""The capsule swarm in the emulated fleet (issue 21): star vs swarm, a peer killed mid-serve, a peer serving a
corrupted chunk.  Real perceus-bus (Curve, signed capsules), real stage-one agents in their own namespaces."""

from __future__ import annotations

import json
import time
from pathlib import Path

from perceus.lab.bus import perceus_cli
from perceus.lab.fleet import FleetRun
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.capsule.swarm_bus import read_state
from perceus.protocol.capsule import digest

from .conftest import NEEDS

pytestmark = NEEDS


def swarm_round(run: FleetRun, *, swarm: bool) -> None:
    """Fresh master state and powered-off nodes; `capsule swarm = no` for the star."""
    run.new_round(pacing=True)
    if not swarm:
        run.stop_bus()
        with run.paths.perceus_conf.open("a") as fh:
            fh.write("capsule swarm = no\n")
        run.start_bus()


def verify_node(run: FleetRun, i: int) -> None:
    manifest = current(Store(run.paths).existing("fleet"))
    assert manifest is not None
    root = Path(f"/proc/{run.tracks[i].pid}/root/run/perceus/capsule")
    assert digest((root / "kernel").read_bytes()) == manifest.kernel.hash
    assert digest((root / "rootfs.cpio").read_bytes()[: manifest.rootfs.size]) == manifest.rootfs.hash


def totals(run: FleetRun) -> tuple[int, int]:
    """(bytes from the master, bytes from peers) over all racks, as the bus wrote them."""
    capsules = read_state(run.paths).get("capsules", {})
    master = sum(r["master"] for c in capsules.values() for r in c["racks"].values())
    peers = sum(r["peers"] for c in capsules.values() for r in c["racks"].values())
    return master, peers


def consoles(run: FleetRun) -> str:
    return "\n".join(t.console.read_text(errors="replace") for t in run.tracks)


def held_files(run: FleetRun, i: int) -> list[Path]:
    d = Path(f"/proc/{run.tracks[i].pid}/root/run/perceus/capsule/swarm")
    try:
        return [p for p in d.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []


def test_star_vs_swarm(fleet: FleetRun) -> None:
    swarm_round(fleet, swarm=False)
    fleet.storm()
    assert all(t.ready for t in fleet.tracks), [f"{t.name}: {t.step} {t.failed}" for t in fleet.tracks]
    star_wire = fleet.wire_bytes
    assert "capsule_swarm_unavailable" in consoles(fleet)

    swarm_round(fleet, swarm=True)
    fleet.storm()
    assert all(t.ready for t in fleet.tracks), [f"{t.name}: {t.step} {t.failed}" for t in fleet.tracks]
    for i in range(len(fleet.tracks)):
        verify_node(fleet, i)
    time.sleep(1.5)  # the bus writes its counters at most once a second
    master, peers = totals(fleet)
    capsule = fleet.capsule_bytes
    n = len(fleet.tracks)
    assert master + peers >= n * capsule * 0.99
    assert peers > 0 and master < n * capsule, (master, peers)
    # The hub counts bytes toward every node, from master and peers alike: about the same in both rounds.
    assert fleet.wire_bytes > 0.9 * star_wire
    status = perceus_cli(fleet.paths, "vnfs", "status", "fleet")
    assert status.returncode == 0, status.stderr
    assert "peers" in status.stdout


def test_peer_serving_corrupted_chunks_is_excluded(fleet: FleetRun) -> None:
    swarm_round(fleet, swarm=True)
    victim = -1
    spoiled: set[Path] = set()

    def spoil(run: FleetRun) -> bool:
        nonlocal victim
        if victim < 0:
            victim = next((i for i in range(len(run.tracks)) if held_files(run, i)), -1)
        if victim >= 0:  # its RAM goes bad: every chunk it keeps for serving gets a flipped byte
            for path in held_files(run, victim):
                if path not in spoiled:
                    data = bytearray(path.read_bytes())
                    data[len(data) // 2] ^= 0xFF
                    path.write_bytes(bytes(data))
                    spoiled.add(path)
        return all(t.ready or t.failed for t in run.tracks)

    fleet.storm(until=spoil)
    fleet.watch()
    assert victim >= 0
    assert all(t.ready for t in fleet.tracks), [f"{t.name}: {t.step} {t.failed}" for t in fleet.tracks]
    for i in range(len(fleet.tracks)):
        verify_node(fleet, i)
    text = consoles(fleet)
    bad = fleet.tracks[victim]
    time.sleep(1.5)
    excluded = [e for c in read_state(fleet.paths).get("capsules", {}).values() for e in c["excluded"]]
    if "chunk_rejected" in text:  # somebody asked the victim after it went bad: caught, reported, excluded
        assert excluded, "a rejected peer chunk was not reported"
        status = perceus_cli(fleet.paths, "--json", "node", "status")
        rows = {r["hostname"]: r for r in json.loads(status.stdout)}
        assert any(r.get("swarm_excluded") for r in rows.values())
        assert bad.hostname in {h for h, r in rows.items() if r.get("swarm_excluded")} or excluded
    assert "chunk_rejected" in text, "no node fetched from the spoiled peer: the test proved nothing"


def test_peer_killed_mid_serve(fleet: FleetRun) -> None:
    swarm_round(fleet, swarm=True)
    victim = -1

    def serving(run: FleetRun) -> bool:
        nonlocal victim
        victim = next((i for i in range(len(run.tracks)) if len(held_files(run, i)) >= 1), -1)
        return victim >= 0

    fleet.storm(until=serving)
    fleet.kill(victim)
    fleet.watch()
    others = [t for i, t in enumerate(fleet.tracks) if i != victim]
    assert all(t.ready for t in others), [f"{t.name}: {t.step} {t.failed}" for t in others]
    for i in range(len(fleet.tracks)):
        if i != victim:
            verify_node(fleet, i)


def test_master_down_30s_mid_swarm(fleet: FleetRun) -> None:
    swarm_round(fleet, swarm=True)
    fleet.storm(until=lambda r: sum(1 for i in range(len(r.tracks)) if held_files(r, i)) >= 2)
    fleet.kill_bus()
    time.sleep(30)
    fleet.start_bus()
    fleet.watch()
    assert all(t.ready for t in fleet.tracks), [f"{t.name}: {t.step} {t.failed}" for t in fleet.tracks]
    for i in range(len(fleet.tracks)):
        verify_node(fleet, i)
