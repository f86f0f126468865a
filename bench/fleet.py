"""Steady-state fleet: N simulated provisiond agents checking in against a real perceus-bus (issue 7).

Each agent is its own DEALER connection (several worker processes, each an event loop over its sockets), says
hello once, then checks in `ready` on the schedule of the real agent: `runtime.first_delay` before the first
check-in and `runtime.next_delay` after each reply (the very functions provisiond uses).  Modules are active
(masterauth, hostname, syncnodes in ready) so every Ack carries real actions from the cached resolver.

Peer, measured in the same run: the same fleet without jitter (all agents started together, a fixed interval),
which is what Perceus 1.x's `provisiond -i 300` did.  Reported per run: the master's CPU share (from
/proc/<pid>/stat over the measuring window), p50/p99 reply time, and the check-in spread = max per-second rate /
mean rate (goal ≤ 2 with jitter).

Curve on (every agent its own key), the product's default.
Usage: python -m bench.fleet [--quick | --smoke] [--agents N] [--interval S] [--duration S] [--procs P]
       (--quick: 1,000 agents × 30 s interval × 60 s; default 10,000 × 60 s × 180 s)
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from bench.checkin import start_curve_bus
from perceus.agent.bus import CurveClient
from perceus.agent.runtime import first_delay, next_delay
from perceus.master.config import Paths
from perceus.master.store.models import Activation, NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Ack, CheckIn, Hello, Welcome


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mac(i: int) -> str:
    return f"0E:01:00:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}"


def worker(endpoint: str, key: bytes, first: int, count: int, jitter: bool, start: float, end: float, seed: int,
           out: mp.Queue) -> None:  # type: ignore[type-arg]  # fmt: skip
    """`count` agents in one process; returns send-second counts, reply latencies and lost requests."""
    rng = random.Random(seed)
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, count + 64)
    socks: list[zmq.Socket[bytes]] = []
    index: dict[zmq.Socket[bytes], int] = {}
    poller = zmq.Poller()
    for i in range(count):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        CurveClient(key)(s)  # every agent its own keypair, as every booted node has
        s.connect(endpoint)
        socks.append(s)
        index[s] = i
    nodes = [mac(first + i) for i in range(count)]
    boot = [f"{seed:08x}{i:024x}" for i in range(count)]
    seq = [0] * count
    sent_at: list[float] = [0.0] * count
    interval = [60.0] * count
    due: list[tuple[float, int]] = []
    while time.time() < start:
        time.sleep(min(0.05, start - time.time()))
    # provisiond starting: one hello each (all at once, as a fleet booting together), not counted below
    for i, s in enumerate(socks):
        poller.register(s, zmq.POLLIN)
        s.send(codec.encode(Hello(macs=(nodes[i],), state="ready", stage=Stage.RUNTIME, boot_id=boot[i], rid=1)))
    welcomed = 0
    deadline = time.time() + 60
    while welcomed < count and time.time() < deadline:
        for s, _ in poller.poll(1000):
            while True:
                try:
                    msg = codec.decode(s.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
                i = index[s]
                poller.unregister(s)
                if isinstance(msg, Welcome):
                    interval[i] = msg.interval
                welcomed += 1
                now = time.time()
                heapq.heappush(due, (now + (first_delay(interval[i], rng) if jitter else interval[i]), i))
    per_second: dict[int, int] = {}
    latencies: list[tuple[float, float]] = []
    waiting = 0
    while True:
        now = time.time()
        if now >= end:
            break
        while due and due[0][0] <= now:
            _, i = heapq.heappop(due)
            seq[i] += 1
            sent_at[i] = time.time()
            socks[i].send(codec.encode(CheckIn(node=nodes[i], state="ready", boot_id=boot[i], seq=seq[i],
                                               rid=seq[i] + 1)))  # fmt: skip
            per_second[int(sent_at[i])] = per_second.get(int(sent_at[i]), 0) + 1
            poller.register(socks[i], zmq.POLLIN)  # only sockets awaiting a reply: poll cost ∝ in flight
            waiting += 1
        timeout = min(end, due[0][0] if due else end) - time.time()
        for s, _ in poller.poll(max(0, int(timeout * 1000)) if not waiting else max(0, min(50, int(timeout * 1000)))):
            while True:
                try:
                    msg = codec.decode(s.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
                i = index[s]
                t = time.time()
                poller.unregister(s)
                waiting -= 1
                latencies.append((sent_at[i], t - sent_at[i]))
                if isinstance(msg, Ack):
                    interval[i] = msg.interval
                heapq.heappush(due, (t + (next_delay(interval[i], rng) if jitter else interval[i]), i))
    lost = waiting
    out.put((per_second, latencies, lost, welcomed))
    for s in socks:
        s.close(0)
    ctx.term()


@dataclass
class Result:
    mode: str
    agents: int
    checkins: int
    cpu_share: float
    p50_ms: float
    p99_ms: float
    spread: float
    lost: int
    rate: float  # mean check-ins per second in the steady window


def run(agents: int, interval: int, duration: float, procs: int, jitter: bool) -> Result:
    with tempfile.TemporaryDirectory(prefix="perceus-fleet-") as tmp:
        paths = Paths(Path(tmp) / "etc", Path(tmp) / "var")
        paths.ensure()
        conf = paths.perceus_conf
        conf.write_text(conf.read_text().replace("checkin interval = 300", f"checkin interval = {interval}"))
        with SQLiteStore(paths.database) as store:
            store.import_nodes([NewNode(nodeid=mac(i), hostname=f"f{i:05d}", group="compute")
                                for i in range(agents)], update=True)  # fmt: skip
            store.activate([Activation("masterauth", "ready", "all"), Activation("hostname", "init", "all"),
                            Activation("syncnodes", "ready", "all")])  # fmt: skip
        bus, server = start_curve_bus(paths)
        try:
            q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            start = time.time() + 2.0 + agents / 1000  # time for every agent's Curve handshake
            end = start + duration
            per = -(-agents // procs)
            key = server.key
            workers = [mp.Process(target=worker, args=(bus.endpoint, key, p * per, min(per, agents - p * per), jitter,
                                                       start, end, 1000 + p, q))
                       for p in range(procs) if p * per < agents]  # fmt: skip
            for w in workers:
                w.start()
            while time.time() < start + min(5, duration / 2):  # the hellos are over; measure the steady state from here
                time.sleep(0.1)
            cpu0, t0 = cpu_seconds(bus.proc.pid), time.time()
            results = [q.get(timeout=duration + 120) for _ in workers]
            cpu1, t1 = cpu_seconds(bus.proc.pid), time.time()
            for w in workers:
                w.join(30)
        finally:
            bus.stop()
    counts: dict[int, int] = {}
    latencies: list[float] = []
    lost = 0
    # Steady state: after one interval the boot-time hello storm and the first (uniform) check-ins are over.
    steady = start + interval if duration > interval else start
    for per_second, lat, lo, _ in results:
        for sec, n in per_second.items():
            counts[sec] = counts.get(sec, 0) + n
        latencies.extend(d for t, d in lat if t >= steady)
        lost += lo
    window = range(int(steady), int(end))
    series = [counts.get(s, 0) for s in window]
    total = sum(series)
    mean = total / max(1, len(series))
    latencies.sort()

    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return Result("jitter" if jitter else "no jitter (peer)", agents, total, (cpu1 - cpu0) / (t1 - t0),
                  p(0.50), p(0.99), max(series) / mean if mean else float("nan"), lost, mean)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 agents, 30 s interval, 60 s")
    ap.add_argument("--smoke", action="store_true", help="seconds: 40 agents, 2 s interval, 4 s")
    ap.add_argument("--agents", type=int)
    ap.add_argument("--interval", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--procs", type=int, default=4)
    args = ap.parse_args(argv)
    agents = args.agents or (40 if args.smoke else 1000 if args.quick else 10_000)
    interval = args.interval or (2 if args.smoke else 30 if args.quick else 60)
    duration = args.duration or (4.0 if args.smoke else 60.0 if args.quick else 180.0)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        pass
    print(f"fleet: {agents} agents, {interval} s interval, {duration:.0f} s measured per mode, {args.procs} client "
          f"processes, {os.cpu_count()} CPUs (clients share them with perceus-bus)", flush=True)  # fmt: skip
    rows: list[Any] = []
    for jitter in (True, False):
        rows.append(run(agents, interval, duration, args.procs, jitter))
        r = rows[-1]
        print(f"  {r.mode}: done ({r.checkins} check-ins)", flush=True)
    print()
    print("(steady state: the first interval — boot-time hellos and first check-ins — is not counted)")
    print(f"{'mode':<18} {'agents':>7} {'check-ins':>10} {'master CPU':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'spread':>7} {'lost':>5}")  # fmt: skip
    for r in rows:
        print(f"{r.mode:<18} {r.agents:>7} {r.checkins:>10} {r.cpu_share * 100:>10.1f}% {r.p50_ms:>8.2f} "
              f"{r.p99_ms:>8.2f} {r.spread:>7.2f} {r.lost:>5}")  # fmt: skip
    j, n = rows
    print(f"\nspread goal ≤ 2: {'met' if j.spread <= 2 else 'NOT met'} ({j.spread:.2f} with jitter, {n.spread:.2f} "
          f"without; mean rate {j.rate:.0f}/s)")  # fmt: skip
    print(f"fleet_spread={j.spread:.2f} fleet_spread_nojitter={n.spread:.2f} fleet_p99_ms={j.p99_ms:.2f} "
          f"fleet_master_cpu={j.cpu_share * 100:.1f}% fleet_agents={j.agents} security=curve")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
