"""Capsule swarm benchmark (issue 21): star vs swarm in one emulator run, then the simulator, calibrated on it.

    python -m bench.swarm [--nodes 100 --capsule-mb 64 --node-mbit 4] [--smoke] [--sim-from RUN.json]

One emulated fleet (perceus.lab.fleet: real perceus-bus, real stage-one agents in namespaces, tbf-shaped
links; the master's uplink is 10× a node link) boots twice from a fresh master state: once as a star
(`capsule swarm = no`, boot-storm pacing on, as shipped before the swarm) and once with the swarm (the default).
Measured per round: last-ready, p50, p99 (from power-on), bytes the master sent (its uplink's counter) ÷ the
capsule's wire size.  Then bench/swarm_sim.py (the same policy module, imported) runs with the emulator's
parameters and each node's measured fetch-start time: its error against the measured last fetch end is the
calibration error.  Last, the simulator at 10,000 nodes × 1 GB (10 GbE nodes, 100 GbE master, racks of 40,
2:1 oversubscribed rack uplinks).  The emulator's measurements are saved (`<workdir>/swarm-run.json`, or
`--save`), and `--sim-from` runs the simulator stages again from such a file without the emulator.

Link rates: this 2-core machine shapes ~400–500 Mbit/s in aggregate (docs: lab recipes), so the default node link
is 4 Mbit/s (100 nodes all fetching at once = 400 Mbit/s, plus the 40 Mbit/s uplink) — the output prints the peak
and mean aggregate the swarm round reached, to show whether the machine or the links were the limit.  Last line:
`swarm_vs_star=<ratio> master_bytes_ratio=<r> sim10k_p50_s=<s> sim10k_p99_s=<s> sim_calibration_err=<fraction>`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perceus.lab.fleet import FleetOptions, FleetResult, FleetRun
from perceus.lab.shaping import Rate, link_bytes
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current


def _round(run: FleetRun, *, swarm: bool) -> tuple[FleetResult, int, float]:
    """One storm from fresh master state: (result, bytes the master's uplink sent, peak rate toward the nodes)."""
    run.new_round(pacing=True)
    if not swarm:
        run.stop_bus()
        with run.paths.perceus_conf.open("a") as fh:
            fh.write("capsule swarm = no\n")
        run.start_bus()
    before = link_bytes(run.net.hub).get("mup", (0, 0))[0]
    peak = [0.0]

    def progress(r: FleetRun, _final: bool) -> None:
        peak[0] = max(peak[0], r.rate())

    run.storm(progress)
    sent = link_bytes(run.net.hub).get("mup", (0, 0))[0] - before
    return run.result(), sent, peak[0]


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


def _emulate(ns: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both rounds in one emulator run; prints the table; returns what the simulator stages need."""
    node = Rate(ns.node_mbit)
    uplink = Rate(ns.node_mbit * 10)
    peak_all = ns.nodes * node.mbit + uplink.mbit
    # The default debug level 1: the run follows each node's phases in its console lines (0 prints none of them).
    options = FleetOptions(
        nodes=ns.nodes,
        capsule_mb=ns.capsule_mb,
        uplink=uplink,
        node_rate=node,
        timeout=3600,
        index=21,
        master_conf="".join(f"{line}\n" for line in ns.conf),
    )
    print(
        f"emulator: {ns.nodes} nodes, capsule {ns.capsule_mb:g} MiB, node links {node.mbit:g} Mbit/s, master "
        f"uplink {uplink.mbit:g} Mbit/s; kexec emulated (nodes go on as provisiond and keep serving); every link "
        f"at once = {peak_all:g} Mbit/s against the ~400–500 Mbit/s this machine shapes in aggregate",
        flush=True,
    )
    with FleetRun(workdir / "run", options, tag="plbsw") as run:
        # The swarm round first: it is the one that needs the CPU (every node serves), the star's time is the
        # master's uplink; each round starts from fresh master state, so the order changes nothing else.
        swarm, swarm_sent, swarm_peak = _round(run, swarm=True)
        print(f"swarm done: last {swarm.percentile(1.0)} s", flush=True)
        manifest = current(Store(run.paths).existing("fleet"))
        sizes = [c.size for c in manifest.all_chunks()] if manifest is not None else []
        star: FleetResult | None = None
        star_sent, star_peak = 0, 0.0
        if not ns.swarm_only:
            star, star_sent, star_peak = _round(run, swarm=False)
            print("star done", flush=True)
    capsule = swarm.capsule_bytes
    print("| round  | last (s) |  p50 (s) |  p99 (s) | master÷capsule | failed |")
    print("|--------|----------|----------|----------|----------------|--------|")
    if star is not None:
        print(_row("star", star, star_sent))
    print(_row("swarm", swarm, swarm_sent))
    bound_star = ns.nodes * capsule / uplink.bytes_per_s
    bound_swarm = capsule / node.bytes_per_s + capsule / uplink.bytes_per_s
    print(
        f"physical bounds: star {bound_star:.1f} s (all through the uplink); swarm ≈ {bound_swarm:.1f} s (one "
        "capsule through a node link after the first chunk leaves the master); from power-on, so both rounds "
        "also carry DHCP, hello and enrolment"
    )
    starts, ends = _fetch_window(swarm)
    window = (max(ends) - min(starts)) if ends else float("nan")
    print(
        f"toward the nodes in the swarm round: peak {swarm_peak * 8 / 1e6:.0f} Mbit/s, mean over the fetch window "
        f"{swarm.wire_bytes * 8 / 1e6 / window:.0f} Mbit/s (star round: peak {star_peak * 8 / 1e6:.0f} Mbit/s)"
    )
    star_last = star.percentile(1.0) if star is not None else ns.star_last
    if star is None:
        print(f"--swarm-only: no star round in this run; star last-ready {ns.star_last} s given on the command line")
    swarm_last = swarm.percentile(1.0)
    return {
        "nodes": ns.nodes, "capsule_bytes": capsule, "node_bps": node.bytes_per_s, "master_bps": uplink.bytes_per_s,
        "starts": starts, "ends": ends, "sizes": sizes, "star_last": star_last, "swarm_last": swarm_last,
        "star_sent": star_sent, "swarm_sent": swarm_sent,
        "failures": swarm.failures + (star.failures if star is not None else 0),
        "star": star.as_dict() if star is not None else {}, "swarm": swarm.as_dict(),
    }  # fmt: skip


def _simulate(run: dict[str, Any], ns: argparse.Namespace) -> tuple[float, float, float]:
    """Calibration against the emulator's swarm round, then the big simulation: (error, p50, p99)."""
    from bench.swarm_sim import Params, simulate  # imported late: a long emulator run picks up the model as is

    starts, ends = run["starts"], run["ends"]
    t0 = time.monotonic()
    cal = simulate(Params.emulated(len(starts), run["sizes"], run["node_bps"], run["master_bps"], starts))
    measured = max(ends) if ends else float("nan")
    err = abs(max(cal.ready) - measured) / measured if ends else float("nan")
    print(
        f"simulator at the emulator's parameters: last fetch end {max(cal.ready):.1f} s vs measured "
        f"{measured:.1f} s (error {err:.1%}; {time.monotonic() - t0:.1f} s CPU)"
    )
    chunk = int(ns.sim_chunk_mb * (1 << 20))
    big = Params(ns.sim_nodes, 1 << 30, chunk_bytes=chunk, rack_size=40, oversubscription=2.0)
    if ns.smoke:
        big = Params(200, 64 << 20, rack_size=40, oversubscription=2.0)
    t0 = time.monotonic()
    r = simulate(big)
    star_floor = big.nodes * big.capsule_bytes / big.master_bps
    print(
        f"simulator: {big.nodes} nodes × {big.capsule_bytes >> 20} MiB, chunks {big.chunk_bytes >> 20} MiB, "
        f"10 GbE nodes, 100 GbE master, racks of 40 at 2:1: last {max(r.ready):.2f} s, p50 {r.pct(0.5):.2f} s, "
        f"p99 {r.pct(0.99):.2f} s, master sent {r.master_bytes / big.capsule_bytes:.2f}× the capsule "
        f"({-(-big.nodes // 40)} racks), master CPU {r.master_cpu_s:.1f} s; star floor {star_floor:.0f} s; "
        f"{time.monotonic() - t0:.0f} s CPU"
    )
    return err, r.pct(0.5), r.pct(0.99)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.swarm", description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--capsule-mb", type=float, default=64)
    ap.add_argument("--node-mbit", type=float, default=4, help="node link; the master's uplink is 10x")
    ap.add_argument("--sim-nodes", type=int, default=10_000)
    ap.add_argument("--sim-chunk-mb", type=float, default=8, help="chunk size of the 10k simulation (CPU)")
    ap.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="LINE",
        help="an extra perceus.conf line for both rounds, e.g. 'capsule swarm peer slots = 2'",
    )
    ap.add_argument("--smoke", action="store_true", help="8 nodes, 8 MiB, 200 simulated nodes × 64 MB")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--save", type=Path, help="where to save the emulator's measurements (JSON)")
    ap.add_argument("--sim-from", type=Path, help="skip the emulator: simulate from a saved run")
    ap.add_argument("--swarm-only", action="store_true", help="no star round (its time from --star-last)")
    ap.add_argument("--star-last", type=float, help="with --swarm-only: a star round's last-ready measured before")
    ns = ap.parse_args(argv)
    if ns.smoke:
        ns.nodes, ns.capsule_mb, ns.node_mbit = 8, 8, 40
    if ns.sim_from is not None:
        run = json.loads(ns.sim_from.read_text(encoding="utf-8"))
        print(f"emulator run from {ns.sim_from}: star last {run['star_last']} s, swarm last {run['swarm_last']} s")
    else:
        workdir = ns.workdir or Path(tempfile.mkdtemp(prefix="perceus-swarm-bench-"))
        try:
            run = _emulate(ns, workdir)
            save = ns.save or (workdir / "swarm-run.json" if ns.workdir else None)
            if save is not None:
                save.write_text(json.dumps(run), encoding="utf-8")
                print(f"saved: {save}")
        finally:
            if ns.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    err, p50, p99 = _simulate(run, ns)
    star_last, swarm_last = run["star_last"], run["swarm_last"]
    ratio = (star_last / swarm_last) if star_last and swarm_last else float("nan")
    print(
        f"swarm_vs_star={ratio:.2f} master_bytes_ratio={run['swarm_sent'] / run['capsule_bytes']:.2f} "
        f"sim10k_p50_s={p50:.2f} sim10k_p99_s={p99:.2f} sim_calibration_err={err:.3f}"
        + ("" if ns.sim_nodes == 10_000 and not ns.smoke else f" sim_nodes={200 if ns.smoke else ns.sim_nodes}")
    )
    return 0 if not run["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
