"""CurveZMQ on vs off (issue 10): check-in throughput, a connect storm, capsule serving — same run, same box.

  checkin  — P client processes × N nodes: each node says hello (its key is pinned) then R check-ins, W in
             flight per process; requests per second through perceus-bus with `bus security = curve` vs `none`
             (fresh perceus-bus per round, rounds interleaved, median ratio; goal ≥ 0.7×).
  storm    — S distinct nodes connect at once (4 processes), each with its own key: one CurveZMQ handshake,
             ZAP decision and `hello` each; seconds until the last reply, and replies lost.
  capsule  — one node fetches a ~48 MB capsule (verified chunks) with and without Curve; MB/s.

Rate limits stay at their defaults; loopback peers are exempt (docs/security.md), so the numbers measure the
crypto, ZAP and gate, not the limiter.  Usage: python -m bench.curve [--quick | --smoke]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import zmq

from perceus.agent.bus import BusClient, CurveClient
from perceus.lab.bus import start_local_bus
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import CheckIn, Hello


def mac(i: int) -> str:
    return f"52:54:{0xA0 + (i >> 24 & 0x0F):02X}:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}"


def fresh_paths(tmp: Path, nodes: int) -> Paths:
    paths = Paths(tmp / "etc", tmp / "var")
    paths.ensure()
    master_keys.ensure(paths)
    with SQLiteStore(paths.database) as store:
        store.import_nodes([NewNode(nodeid=mac(i), hostname=f"n{i:05d}") for i in range(nodes)], update=False)
    return paths


def _socket(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, key: bytes | None) -> zmq.Socket[bytes]:
    s: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if key is not None:
        CurveClient(key)(s)
    s.connect(endpoint)
    return s


def checkin_worker(
    endpoint: str, key: bytes | None, first: int, nodes: int, rounds: int, window: int, q: mp.Queue
) -> None:  # type: ignore[type-arg]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    socks = [_socket(ctx, endpoint, key) for _ in range(nodes)]
    boot = f"{first:08x}" * 4
    for i, s in enumerate(socks):  # hello: pins each node's key (not timed)
        s.send(
            codec.encode(Hello(rid=1, seq=1, macs=(mac(first + i),), state="init", stage=Stage.STAGE1, boot_id=boot))
        )
    for s in socks:
        s.recv()
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    todo = [(i, r) for r in range(rounds) for i in range(nodes)]
    sent = done = 0
    inflight = 0
    t0 = time.perf_counter()
    while done < len(todo):
        while sent < len(todo) and inflight < window:
            i, r = todo[sent]
            socks[i].send(codec.encode(CheckIn(rid=r + 2, seq=r + 2, node=mac(first + i), state="ready", boot_id=boot)))
            sent += 1
            inflight += 1
        for s, _ in poller.poll(10_000):
            while s.poll(0):
                s.recv()
                done += 1
                inflight -= 1
    q.put((len(todo), time.perf_counter() - t0))
    for s in socks:
        s.close()
    ctx.term()


def checkin_rate(mode: str, procs: int, nodes: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        paths = fresh_paths(Path(tmp), procs * nodes)
        bus = start_local_bus(paths, security=mode)
        key = master_keys.load(paths).bus_public if mode == "curve" else None  # type: ignore[union-attr]
        try:
            q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            ps = [mp.Process(target=checkin_worker, args=(bus.endpoint, key, p * nodes, nodes, rounds, 64, q))
                  for p in range(procs)]  # fmt: skip
            t0 = time.perf_counter()
            for p in ps:
                p.start()
            results = [q.get(timeout=300) for _ in ps]
            for p in ps:
                p.join()
            del t0
            total = sum(n for n, _ in results)
            return total / max(t for _, t in results)
        finally:
            bus.stop()


def storm_worker(endpoint: str, key: bytes | None, first: int, count: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, count + 100)  # libzmq refuses past 1023 sockets by default
    socks = [_socket(ctx, endpoint, key) for _ in range(count)]
    t0 = time.perf_counter()
    for i, s in enumerate(socks):
        h = Hello(rid=1, seq=1, macs=(mac(first + i),), state="init", stage=Stage.STAGE1, boot_id=f"s{first + i}")
        s.send(codec.encode(h))
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    got = 0
    deadline = time.monotonic() + 120
    while got < count and time.monotonic() < deadline:
        for s, _ in poller.poll(1000):
            s.recv()
            poller.unregister(s)
            got += 1
    q.put((got, time.perf_counter() - t0))
    for s in socks:
        s.close()
    ctx.term()


def storm(mode: str, nodes: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = fresh_paths(Path(tmp), nodes)
        bus = start_local_bus(paths, security=mode)
        key = master_keys.load(paths).bus_public if mode == "curve" else None  # type: ignore[union-attr]
        try:
            q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            per = nodes // 4
            ps = [mp.Process(target=storm_worker, args=(bus.endpoint, key, p * per, per, q)) for p in range(4)]
            for p in ps:
                p.start()
            results = [q.get(timeout=300) for _ in ps]
            for p in ps:
                p.join()
            return max(t for _, t in results), nodes - sum(g for g, _ in results)
        finally:
            bus.stop()


def capsule_rate(mode: str, size_mb: int) -> float:
    from perceus.agent import security as node_security
    from perceus.agent.capsule_fetch import fetch_capsule
    from perceus.master.capsule.importer import import_capsule
    from perceus.master.capsule.layout import Store
    from perceus.master.capsule.pack import current

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        paths = fresh_paths(t, 0)
        rng = random.Random(1)
        root = t / "chroot"
        (root / "boot").mkdir(parents=True)
        (root / "boot/vmlinuz-6.1").write_bytes(rng.randbytes(1 << 20))
        (root / "data").mkdir()
        for i in range(size_mb):
            (root / f"data/f{i}").write_bytes(rng.randbytes(1 << 19) + bytes(1 << 19))
        import_capsule(paths, root, name="cap")
        with SQLiteStore(paths.database) as store:
            store.add(NewNode(nodeid=mac(1), hostname="n1", vnfs="cap"))
        m = current(Store(paths).existing("cap"))
        assert m is not None
        keys = master_keys.load(paths)
        assert keys is not None
        bus = start_local_bus(paths, security=mode)
        node_security.use(node_security.Trust(keys.bus_public, keys.sign_public, "bench"))
        client = BusClient([bus.endpoint], curve=CurveClient(keys.bus_public) if mode == "curve" else None)
        try:
            client.request(Hello(macs=(mac(1),), state="init", stage=Stage.STAGE1, boot_id="cap"))
            t0 = time.perf_counter()
            got = fetch_capsule(client, mac(1), m.hash, t / "node")
            seconds = time.perf_counter() - t0
            raw = got.rootfs.stat().st_size + got.kernel.stat().st_size
            return raw / seconds / 1e6
        finally:
            client.close()
            bus.stop()
            node_security.use(None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.curve", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--smoke", action="store_true", help="seconds: tiny sizes, one round")
    p.add_argument("--rounds", type=int, default=0)
    p.add_argument("--storm-nodes", type=int, default=0)
    a = p.parse_args(argv)
    rounds = a.rounds or (1 if a.smoke else 2 if a.quick else 5)
    storm_nodes = a.storm_nodes or (100 if a.smoke else 2000 if a.quick else 10_000)
    procs, nodes, reps = (2, 8, 3) if a.smoke else (4, 32, 10) if a.quick else (8, 64, 20)
    rows: list[tuple[str, str, str, str]] = []
    rates: dict[str, list[float]] = {"none": [], "curve": []}
    for _ in range(rounds):
        for mode in ("none", "curve"):
            rates[mode].append(checkin_rate(mode, procs, nodes, reps))
    ratios = [c / n for c, n in zip(rates["curve"], rates["none"], strict=True)]
    rows.append(("check-ins/s (median)", f"{statistics.median(rates['none']):,.0f}",
                 f"{statistics.median(rates['curve']):,.0f}", f"{statistics.median(ratios):.2f}×"))  # fmt: skip
    s_none, lost_none = storm("none", storm_nodes)
    s_curve, lost_curve = storm("curve", storm_nodes)
    rows.append((f"storm {storm_nodes} nodes (s, lost)", f"{s_none:.2f} ({lost_none})", f"{s_curve:.2f} ({lost_curve})",
                 f"{s_none / s_curve:.2f}×"))  # fmt: skip
    size = 2 if a.smoke else 8 if a.quick else 48
    mb_none, mb_curve = capsule_rate("none", size), capsule_rate("curve", size)
    rows.append((f"capsule fetch {size} MB (MB/s)", f"{mb_none:.0f}", f"{mb_curve:.0f}", f"{mb_curve / mb_none:.2f}×"))
    print(f"{'workload':<32} {'security=none':>16} {'security=curve':>16} {'curve/none':>11}")
    for r in rows:
        print(f"{r[0]:<32} {r[1]:>16} {r[2]:>16} {r[3]:>11}")
    print(
        f"checkin_curve_ratio={statistics.median(ratios):.2f} storm_curve_s={s_curve:.2f} "
        f"storm_curve_lost={lost_curve} storm_nodes={storm_nodes}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
