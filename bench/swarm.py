"""Capsule swarm benchmark (issue 21): star vs swarm in one emulator run, then the simulator, calibrated on it.

    python -m bench.swarm [--nodes 100 --capsule-mb 64 --node-mbit 20] [--smoke]

One emulated fleet (perceus.lab.fleet: real perceus-bus, real stage-one agents in namespaces, tbf-shaped
links; the master's uplink is 10× a node link) boots twice from a fresh master state: once as a star
(`capsule swarm = no`, boot-storm pacing on, as shipped before the swarm) and once with the swarm (the default).
Measured per round: last-ready, p50, p99 (from power-on), bytes the master sent (its uplink's counter) ÷ the
capsule's wire size.  Then bench/swarm_sim.py (the same policy module, imported) runs with the emulator's
parameters and each node's measured fetch-start time: its error against the measured last fetch end is the
calibration error.  Last, the simulator at 10,000 nodes × 1 GB (10 GbE nodes, 100 GbE master, racks of 40,
2:1 oversubscribed rack uplinks).  Last line:
`swarm_vs_star=<ratio> master_bytes_ratio=<r> sim10k_p50_s=<s> sim10k_p99_s=<s> sim_calibration_err=<fraction>`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.swarm_sim import Params, simulate
from perceus.lab.fleet import FleetOptions, FleetResult, FleetRun
from perceus.lab.shaping import Rate, link_bytes


def _round(run: FleetRun, *, swarm: bool) -> tuple[FleetResult, int]:
    run.new_round(pacing=True)
    if not swarm:
        run.stop_bus()
        with run.paths.perceus_conf.open("a") as fh:
            fh.write("capsule swarm = no\n")
        run.start_bus()
    before = link_bytes(run.net.hub).get("mup", (0, 0))[0]
    run.storm()
    sent = link_bytes(run.net.hub).get("mup", (0, 0))[0] - before
    return run.result(), sent


def _fmt(v: float | None) -> str:
    return f"{v:8.1f}" if v is not None else "       -"


def _row(name: str, r: FleetResult, sent: int) -> str:
    p50, p99, last = r.percentile(0.5), r.percentile(0.99), r.percentile(1.0)
    ratio = sent / r.capsule_bytes
    return f"| {name:<6} | {_fmt(last)} | {_fmt(p50)} | {_fmt(p99)} | {ratio:14.2f} | {r.failures:6d} |"


def _fetch_window(r: FleetResult) -> tuple[list[float], list[float]]:
    """Per node: fetch start and fetch end (kexec) in seconds since power-on, for the ready nodes."""
    starts, ends = [], []
    for t in r.tracks:
        if "capsule" in t.times and "kexec" in t.times:
            starts.append(t.times["capsule"] - r.origin)
            ends.append(t.times["kexec"] - r.origin)
    return starts, ends


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.swarm", description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--capsule-mb", type=float, default=64)
    ap.add_argument("--node-mbit", type=float, default=20)
    ap.add_argument("--sim-chunk-mb", type=float, default=8, help="chunk size of the 10k simulation (CPU)")
    ap.add_argument("--smoke", action="store_true", help="8 nodes, 8 MiB, 200 simulated nodes × 64 MB")
    ap.add_argument("--workdir", type=Path)
    ns = ap.parse_args(argv)
    if ns.smoke:
        ns.nodes, ns.capsule_mb, ns.node_mbit = 8, 8, 40
    node = Rate(ns.node_mbit)
    uplink = Rate(ns.node_mbit * 10)
    workdir = ns.workdir or Path(tempfile.mkdtemp(prefix="perceus-swarm-bench-"))
    # The default debug level 1: the run follows each node's phases in its console lines (0 prints none of them).
    options = FleetOptions(
        nodes=ns.nodes, capsule_mb=ns.capsule_mb, uplink=uplink, node_rate=node, timeout=3600, index=21
    )
    print(
        f"emulator: {ns.nodes} nodes, capsule {ns.capsule_mb:g} MiB, node links {node.mbit:g} Mbit/s, master "
        f"uplink {uplink.mbit:g} Mbit/s; kexec emulated (nodes go on as provisiond and keep serving)",
        flush=True,
    )
    try:
        with FleetRun(workdir / "run", options, tag="plbsw") as run:
            star, star_sent = _round(run, swarm=False)
            print("star done", flush=True)
            swarm, swarm_sent = _round(run, swarm=True)
            print("swarm done", flush=True)
    finally:
        if ns.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    capsule = swarm.capsule_bytes
    print("| round  | last (s) |  p50 (s) |  p99 (s) | master÷capsule | failed |")
    print("|--------|----------|----------|----------|----------------|--------|")
    print(_row("star", star, star_sent))
    print(_row("swarm", swarm, swarm_sent))
    bound_star = ns.nodes * capsule / uplink.bytes_per_s
    bound_swarm = capsule / node.bytes_per_s + capsule / uplink.bytes_per_s
    print(
        f"physical bounds: star {bound_star:.1f} s (all through the uplink); swarm ≈ {bound_swarm:.1f} s (one "
        "capsule through a node link after the first chunk leaves the master)"
    )

    # Calibration: the simulator with the emulator's parameters and measured fetch starts.
    starts, ends = _fetch_window(swarm)
    t0 = time.monotonic()
    cal = simulate(Params(len(starts), capsule, node_bps=node.bytes_per_s, master_bps=uplink.bytes_per_s,
                          rpc_s=0.004, peer_rtt_s=0.002, unpack_s_per_chunk=0.05, starts=starts))  # fmt: skip
    measured = max(ends) if ends else float("nan")
    err = abs(max(cal.ready) - measured) / measured if ends else float("nan")
    print(
        f"simulator at the emulator's parameters: last fetch end {max(cal.ready):.1f} s vs measured "
        f"{measured:.1f} s (error {err:.1%}; {time.monotonic() - t0:.1f} s CPU)"
    )

    big = Params(200, 64 << 20, rack_size=40, oversubscription=2.0) if ns.smoke else Params(
        10_000, 1 << 30, chunk_bytes=int(ns.sim_chunk_mb * (1 << 20)), rack_size=40, oversubscription=2.0)  # fmt: skip
    t0 = time.monotonic()
    r = simulate(big)
    star_floor = big.nodes * big.capsule_bytes / big.master_bps
    print(
        f"simulator: {big.nodes} nodes × {big.capsule_bytes >> 20} MiB, chunks {big.chunk_bytes >> 20} MiB, "
        f"10 GbE nodes, 100 GbE master, racks of 40 at 2:1: last {max(r.ready):.2f} s, p50 {r.pct(0.5):.2f} s, "
        f"p99 {r.pct(0.99):.2f} s, master sent {r.master_bytes / big.capsule_bytes:.2f}× the capsule "
        f"({-(-big.nodes // 40)} racks); star floor {star_floor:.0f} s; {time.monotonic() - t0:.0f} s CPU"
    )
    star_last, swarm_last = star.percentile(1.0), swarm.percentile(1.0)
    ratio = (star_last / swarm_last) if star_last and swarm_last else float("nan")
    print(
        f"swarm_vs_star={ratio:.2f} master_bytes_ratio={swarm_sent / capsule:.2f} sim10k_p50_s={r.pct(0.5):.2f} "
        f"sim10k_p99_s={r.pct(0.99):.2f} sim_calibration_err={err:.3f}"
        + ("" if big.nodes == 10_000 else f" sim_nodes={big.nodes}")  # --smoke: the sim10k_ keys are not of 10k
    )
    return 0 if not swarm.failures else 1


if __name__ == "__main__":
    sys.exit(main())
