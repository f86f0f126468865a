"""Fleet boot benchmark: a boot storm of emulated nodes against one master, unpaced vs paced, same emulator run.

One `perceus.lab.fleet` set-up (namespaces, shaped links, keys, capsule; a star: `capsule swarm = no`) serves
both storms: first every node pulls at once (`capsule pacing = no`, the peer), then the master grants transfer
slots (`capsule pacing = yes`, the default).
Between them every node is powered off and the master starts from the same pristine state, so
both storms enroll the same nodes from nothing.  The physical bound is `nodes × capsule ÷ uplink`: no star
topology can deliver every capsule faster through the master's link.  Each node runs the real stage-one agent
(DHCP, hello, enrollment, Curve, signed + verified capsule); kexec is emulated (recorded, then provisiond runs).

The last line is exactly:
  fleet_nodes=<n> paced_last_s=<s> bound_s=<s> paced_vs_bound=<ratio> failures=<n>
  (failures: nodes of the paced storm that were not ready by the deadline)
Usage: python -m bench.fleet_boot [--smoke] [--nodes N] [--capsule-mb M] [--uplink R] [--node-rate R]
Needs root (namespaces, tc); run under `flock /tmp/perceus-vm.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from perceus.lab.fleet import FleetOptions, FleetResult, FleetRun
from perceus.lab.shaping import parse_rate


def storm(run: FleetRun, *, pacing: bool, first: bool) -> FleetResult:
    if not first:
        run.new_round(pacing=pacing)
    started = time.monotonic()
    run.storm(lambda r, final: None)
    result = run.result()
    print(f"  {'paced' if pacing else 'unpaced':<8} storm done in {time.monotonic() - started:6.1f} s", flush=True)
    return result


def enroll_p99(result: FleetResult) -> float | None:
    """Seconds from lease to welcome (hello + enrollment) at the 99th percentile: never behind transfers."""
    spans = sorted(t.times["enrolled"] - t.times["dhcp"] for t in result.tracks if {"dhcp", "enrolled"} <= set(t.times))
    return spans[min(len(spans) - 1, round(0.99 * (len(spans) - 1)))] if spans else None


def fmt(v: float | None) -> str:
    return f"{v:8.1f}" if v is not None else f"{'-':>8}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="seconds: 6 nodes, 2 MiB capsule, 40 Mbit/s uplink")
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--capsule-mb", type=float, default=8.0)
    ap.add_argument("--uplink", default="200mbit")
    ap.add_argument("--node-rate", default="20mbit")
    ap.add_argument("--workdir", help="keep everything here (default: a temp dir)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("fleet_boot: error: needs root (network namespaces, tc)", file=sys.stderr)
        return 1
    if args.smoke:
        args.nodes, args.capsule_mb, args.uplink = 6, 2.0, "40mbit"
    # A star: every capsule through the master's uplink (the swarm, issue 21, has its own bench.swarm).
    options = FleetOptions(nodes=args.nodes, capsule_mb=args.capsule_mb, uplink=parse_rate(args.uplink),
                           node_rate=parse_rate(args.node_rate), pacing=False,
                           master_conf="capsule swarm = no\n")  # fmt: skip
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="perceus-fleet-bench-"))
    print(f"fleet_boot: {options.nodes} emulated nodes (real stage-one agents, Curve, signed capsules; kexec "
          f"emulated), capsule {options.capsule_mb:g} MiB, uplink {options.uplink}, node links {options.node_rate}",
          flush=True)  # fmt: skip
    with FleetRun(workdir / "run", options) as run:
        bound = options.nodes * run.capsule_bytes / options.uplink.bytes_per_s
        deadline = max(60.0, 4 * bound + 60)
        run.options = dataclasses.replace(run.options, timeout=deadline)
        unpaced = storm(run, pacing=False, first=True)
        paced = storm(run, pacing=True, first=False)
    head = (f"{'star':<9} {'nodes':>5} {'capsule MB':>10} {'uplink':>8} {'node':>8} {'bound s':>8} {'p50 s':>8} "
            f"{'p99 s':>8} {'last s':>8} {'÷bound':>7} {'enroll99':>8} {'retries':>7} {'chunk re':>8} "
            f"{'failed':>6}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for name, r in (("unpaced", unpaced), ("paced", paced)):
        last = r.percentile(1.0) if r.failures == 0 else None
        ratio = f"{last / bound:7.2f}" if last is not None else f"{'-':>7}"
        print(f"{name:<9} {options.nodes:>5} {r.capsule_bytes / 1e6:>10.1f} {options.uplink.mbit:>7g}M "
              f"{options.node_rate.mbit:>7g}M {bound:>8.1f} {fmt(r.percentile(0.5))} {fmt(r.percentile(0.99))} "
              f"{fmt(last)} {ratio} {fmt(enroll_p99(r))} {sum(t.retries for t in r.tracks):>7} "
              f"{sum(t.chunk_retries for t in r.tracks):>8} {r.failures:>6}")  # fmt: skip
    print(f"memory: {paced.node_rss_mb:.1f} MB RSS / {paced.node_pss_mb:.1f} MB PSS per emulated node (+ its capsule "
          f"in tmpfs), master {paced.master_rss_mb:.1f} MB RSS; last = time until the last node's provisiond was "
          f"welcomed, from the first power-on; '-' = not every node was ready by {deadline:.0f} s")  # fmt: skip
    paced_last = paced.percentile(1.0) if paced.failures == 0 else paced.wall
    print(f"fleet_nodes={options.nodes} paced_last_s={paced_last or 0:.1f} bound_s={bound:.1f} "
          f"paced_vs_bound={(paced_last or 0) / bound:.2f} failures={paced.failures}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
