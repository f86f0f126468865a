"""Discrete-event model of the capsule swarm, driven by the real policy (perceus.master.capsule.swarm, imported).

`python -m bench.swarm_sim [--nodes N --capsule-mb M …]` prints last-ready, p50 and p99 of one simulated storm.
bench/swarm.py calls `simulate` twice: first with the emulator's own parameters (and each node's measured
fetch-start time) to report the calibration error, then at 10,000 nodes × 1 GB.

Model (what is and is not in it):
- links: the master's uplink, every node's up- and downlink, and per rack an uplink and a downlink of
  `rack_size × node link ÷ oversubscription`; a chunk crossing racks uses both rack links.  Fluid model: when a
  transfer starts or ends, the transfers on its links get max-min fair rates (progressive filling; flows on
  other links keep theirs) — what TCP flows sharing links settle to, without TCP's ramp-up or loss; the
  calibration run says how much that matters.
- nodes behave like perceus.agent.peer_serve.SwarmPull: shuffled chunk order, `credit` chunks in flight, one
  `get_sources` outstanding, which reports held chunks and asks for more; `retry_after` when nothing is
  assignable.  A round trip to the master costs `rpc_s` (service and network), a peer request `peer_rtt_s`.
- the master answers one `get_sources` at a time; each costs the policy's CPU time as measured while the
  simulation runs it (the same code the bus runs) plus `bus_s` for the bus itself, so a master that cannot keep
  up shows as queueing (`master_cpu_s` is reported).
- verify + unpack are pipelined with the fetch (the agent decompresses each chunk as it arrives): a node is
  ready `unpack_s_per_chunk` after its last chunk.  DHCP, hello and kexec are outside the model (the emulator
  calibration starts each node at its measured fetch start).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from perceus.master.capsule.swarm import MASTER, Swarm, SwarmSettings

MBIT = 1e6 / 8


@dataclass(frozen=True)
class Params:
    nodes: int
    capsule_bytes: int
    chunk_bytes: int = 2 << 20
    node_bps: float = 10e9 / 8
    master_bps: float = 100e9 / 8
    rack_size: int = 0  # 0: one flat network (the emulator's bridge)
    oversubscription: float = 1.0
    credit: int = 8
    rpc_s: float = 0.002
    peer_rtt_s: float = 0.001
    unpack_s_per_chunk: float = 0.004
    starts: Sequence[float] = ()  # per-node fetch start (s); default all at 0
    bus_s: float = 40e-6  # perceus-bus per request beyond the policy (decode, gate, encode, send)
    master_slots: int = 0  # 0: as perceus-bus computes it (uplink ÷ node link + 1)
    seed: int = 21
    sizes: Sequence[int] = ()  # the real capsule's chunk sizes (wire bytes); default: capsule cut at chunk_bytes

    @classmethod
    def emulated(cls, nodes: int, sizes: Sequence[int], node_bps: float, master_bps: float,
                 starts: Sequence[float]) -> Params:  # fmt: skip
        """The emulator's fleet: one flat bridge, its link rates, each node's measured fetch start; round trips
        and unpack time of stage-one agents sharing 2 cores (Curve, BLAKE3, zstd in one process per node)."""
        return cls(nodes, sum(sizes), max(sizes), node_bps=node_bps, master_bps=master_bps, rpc_s=0.004,
                   peer_rtt_s=0.002, unpack_s_per_chunk=0.05, starts=starts, sizes=sizes)  # fmt: skip


@dataclass
class Result:
    ready: list[float]
    master_bytes: int
    peer_bytes: int
    transfers: int
    master_cpu_s: float = 0.0

    def pct(self, q: float) -> float:
        r = sorted(self.ready)
        return r[min(len(r) - 1, round(q * (len(r) - 1)))]


@dataclass(eq=False)
class _Transfer:
    node: int
    idx: int
    source: str
    links: list[_Link]
    remaining: float
    rate: float = 0.0
    last: float = 0.0
    version: int = 0
    done: bool = False


@dataclass(eq=False)
class _Link:
    cap: float
    active: set[_Transfer] = field(default_factory=set)


@dataclass
class _Node:
    todo: list[int]
    missing: set[int]
    inflight: int = 0
    asking: bool = False
    have: list[int] = field(default_factory=list)
    next_ask: float = 0.0
    done_at: float = -1.0


def simulate(p: Params) -> Result:
    rng = random.Random(p.seed)
    chunks = max(1, -(-p.capsule_bytes // p.chunk_bytes))
    sizes = [p.chunk_bytes] * (chunks - 1) + [p.capsule_bytes - p.chunk_bytes * (chunks - 1)]
    if p.sizes:
        sizes, chunks = list(p.sizes), len(p.sizes)
    now = [0.0]
    settings = SwarmSettings.for_links(p.node_bps, p.master_bps, p.chunk_bytes)  # as swarm_bus.settings_from_config
    if p.master_slots:
        settings = dataclasses.replace(settings, master_slots=p.master_slots)
    swarm = Swarm(sizes, settings, clock=lambda: now[0])
    names = [f"n{i}" for i in range(p.nodes)]
    rack_of = [str(i // p.rack_size) if p.rack_size else "" for i in range(p.nodes)]
    index = {n: i for i, n in enumerate(names)}
    master = _Link(p.master_bps)
    up = [_Link(p.node_bps) for _ in range(p.nodes)]
    down = [_Link(p.node_bps) for _ in range(p.nodes)]
    racks = sorted(set(rack_of))
    rack_cap = (p.rack_size * p.node_bps / p.oversubscription) if p.rack_size else float("inf")
    rack_up = {r: _Link(rack_cap) for r in racks}
    rack_down = {r: _Link(rack_cap) for r in racks}
    nodes: list[_Node] = []
    for _ in range(p.nodes):
        order = list(range(chunks))
        rng.shuffle(order)
        nodes.append(_Node(order, set(order)))
    # (t, seq, kind, node, chunk or version, source, transfer)
    events: list[tuple[float, int, str, int, int, str, _Transfer | None]] = []
    seq = itertools.count()
    starts = list(p.starts) or [0.0] * p.nodes
    for i in range(p.nodes):
        swarm.join(names[i], rack_of[i])
        heapq.heappush(events, (starts[i], next(seq), "ask", i, -1, "", None))
    transfers = 0
    master_bytes = peer_bytes = 0
    master_free = [0.0]
    master_cpu = [0.0]

    def path(i: int, source: str) -> list[_Link]:
        if source == MASTER:
            links = [master, down[i]]
            if p.rack_size:
                links.append(rack_down[rack_of[i]])
            return links
        j = index[source]
        links = [up[j], down[i]]
        if rack_of[j] != rack_of[i]:
            links += [rack_up[rack_of[j]], rack_down[rack_of[i]]]
        return links

    def ask(i: int) -> None:
        node = nodes[i]
        if node.asking or node.done_at >= 0:
            return
        node.asking = True
        heapq.heappush(events, (now[0] + p.rpc_s / 2, next(seq), "serve", i, -1, "", None))

    def rerate(t: float, affected: set[_Transfer]) -> None:
        """Max-min fair rates for the transfers on the links that changed (progressive filling), the rates of
        transfers elsewhere held fixed: what TCP flows sharing those links settle to."""
        for x in affected:
            x.remaining -= x.rate * (t - x.last)
            x.last = t
        links = {link for x in affected for link in x.links}
        left = {link: link.cap - sum(y.rate for y in link.active if y not in affected) for link in links}
        todo = {link: [x for x in link.active if x in affected] for link in links}
        unfrozen = set(affected)
        while unfrozen:
            best, share = None, float("inf")
            for link, xs in todo.items():
                n = sum(1 for x in xs if x in unfrozen)
                if n and max(left[link], 1.0) / n < share:
                    best, share = link, max(left[link], 1.0) / n
            if best is None:
                break
            for x in [x for x in todo[best] if x in unfrozen]:
                x.rate = share
                unfrozen.discard(x)
                for link in x.links:
                    left[link] -= share
        for x in affected:
            x.version += 1
            finish = t + max(0.0, x.remaining) / x.rate
            heapq.heappush(events, (finish, next(seq), "got", x.node, x.version, x.source, x))

    while events:
        t, _, kind, i, c_version, source, tr = heapq.heappop(events)
        now[0] = t
        node = nodes[i]
        if kind == "ask":
            ask(i)
        elif kind == "serve":  # get_sources reaches the master: it answers one request at a time
            if master_free[0] > t:
                heapq.heappush(events, (master_free[0], next(seq), "serve", i, -1, "", None))
                continue
            cpu = time.perf_counter()
            swarm.have(names[i], node.have)
            node.have = []
            free = p.credit - node.inflight
            want = [x for x in node.todo if x in node.missing][:256] if free > 0 else []
            pairs = swarm.assign(names[i], want, free) if want else []
            # The master's time for this request: the policy's own CPU time, measured here, plus the bus's.
            busy = time.perf_counter() - cpu + p.bus_s
            master_cpu[0] += busy
            master_free[0] = t + busy
            t += busy
            for idx, src in pairs:
                node.todo.remove(idx)
                node.inflight += 1
                delay = p.rpc_s / 2 + (p.rpc_s if src == MASTER else p.peer_rtt_s)
                tr = _Transfer(i, idx, src, path(i, src), float(sizes[idx]), last=t + delay)
                heapq.heappush(events, (t + delay, next(seq), "begin", i, idx, src, tr))
            node.asking = False
            if want and not pairs:
                node.next_ask = t + p.rpc_s / 2 + swarm.settings.retry_s
                heapq.heappush(events, (node.next_ask, next(seq), "ask", i, -1, "", None))
            elif node.missing and node.inflight < p.credit and len(node.todo) > 0 and pairs:
                heapq.heappush(events, (t + p.rpc_s / 2, next(seq), "ask", i, -1, "", None))
        elif kind == "begin":
            assert tr is not None
            for link in tr.links:
                link.active.add(tr)
            rerate(t, {x for link in tr.links for x in link.active})
        elif kind == "got":
            assert tr is not None
            if tr.version != c_version or tr.done:
                continue  # rescheduled since
            tr.done = True
            for link in tr.links:
                link.active.discard(tr)
            rerate(t, {x for link in tr.links for x in link.active})
            c = tr.idx
            transfers += 1
            node.inflight -= 1
            node.missing.discard(c)
            node.have.append(c)
            if source == MASTER:
                master_bytes += sizes[c]
            else:
                peer_bytes += sizes[c]
            if not node.missing:
                node.done_at = t + p.unpack_s_per_chunk
                swarm.have(names[i], node.have)  # the last report (the agent sends it after the loop)
                node.have = []
            else:
                ask(i)
    ready = [n.done_at - s for n, s in zip(nodes, starts, strict=True)] if not p.starts else [n.done_at for n in nodes]
    return Result(ready, master_bytes, peer_bytes, transfers, master_cpu[0])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.swarm_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--capsule-mb", type=float, default=1024)
    ap.add_argument("--chunk-mb", type=float, default=2)
    ap.add_argument("--node-gbit", type=float, default=10)
    ap.add_argument("--master-gbit", type=float, default=100)
    ap.add_argument("--rack", type=int, default=40)
    ap.add_argument("--oversubscription", type=float, default=2.0)
    ap.add_argument("--smoke", action="store_true", help="200 nodes × 64 MB (seconds)")
    ns = ap.parse_args(argv)
    if ns.smoke:
        ns.nodes, ns.capsule_mb = 200, 64
    p = Params(ns.nodes, int(ns.capsule_mb * (1 << 20)), int(ns.chunk_mb * (1 << 20)), ns.node_gbit * 1e9 / 8,
               ns.master_gbit * 1e9 / 8, ns.rack, ns.oversubscription)  # fmt: skip
    r = simulate(p)
    print(
        f"nodes={p.nodes} capsule_mb={ns.capsule_mb:g} chunk_mb={ns.chunk_mb:g} node_gbit={ns.node_gbit:g} "
        f"master_gbit={ns.master_gbit:g} rack={ns.rack} oversub={ns.oversubscription:g} transfers={r.transfers}"
    )
    print(f"sim_last_s={max(r.ready):.2f} sim_p50_s={r.pct(0.5):.2f} sim_p99_s={r.pct(0.99):.2f} "
          f"master_bytes_ratio={r.master_bytes / p.capsule_bytes:.2f} master_cpu_s={r.master_cpu_s:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
