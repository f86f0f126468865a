"""Check-in benchmark: perceus-bus (SQLite, group commit) against a bare pyzmq ROUTER echo server.

Workloads (issue 3, spec §10.3):
  daemon-bench shape — 512 nodes, 32 concurrent client processes × 16 nodes, each node: init, ready×6, init,
  ready (4,608 requests); fresh node IDs every round, so every round auto-adds 512 nodes.  Same clients and
  message sizes against the echo peer, ≥ 5 interleaved rounds, median of per-round ratios.
  storm — 10,000 distinct known nodes connect and send `hello init` at once from 4 processes; seconds until
  the last reply and replies lost (fresh perceus-bus per round).

The last line is exactly: checkin_vs_echo=<ratio> storm_10k_s=<seconds> storm_lost=<n>
Usage: bench/checkin.py [--quick] [--rounds N] [--storm-nodes N]

Other check-in benchmarks live in their own modules and are reached from here:
  --legacy                          bench/legacy.py: Perceus 1.x TCP 987 clients (one connection per request)
  --fleet                           bench/fleet.py: 10k provisiond agents at a jittered 60 s interval
  --curve                           bench/curve.py: CurveZMQ on vs off
  --backend postgresql --masters …  bench/multimaster.py: 1, 2, 3 masters on PostgreSQL vs SQLite
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import multiprocessing as mp
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import CheckIn, Hello

ECHO_SERVER = r"""
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.BACKLOG, 4096); s.setsockopt(zmq.RCVHWM, 100000); s.setsockopt(zmq.SNDHWM, 100000)
s.bind("tcp://127.0.0.1:0")
print(s.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
recv, send = s.recv_multipart, s.send_multipart
while True:
    s.poll()
    while True:
        try:
            frames = recv(zmq.NOBLOCK)
        except zmq.Again:
            break
        send(frames)
"""

NODES_PER_CLIENT = 16
CLIENTS = 32


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- daemon-bench


def _bench_client(endpoint: str, round_no: int, client: int, start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    macs = [f"0A:{round_no:02X}:{client:02X}:{i:02X}:{os.getpid() & 0xFF:02X}:01" for i in range(NODES_PER_CLIENT)]
    rid = 0
    errors = 0

    def request(frame: bytes) -> None:
        nonlocal errors
        sock.send(frame)
        if not sock.poll(30000):
            errors += 1
            return
        reply = codec.decode(sock.recv_multipart()[0])
        if reply.rid != rid:
            errors += 1

    def hello(mac: str) -> bytes:
        nonlocal rid
        rid += 1
        return codec.encode(Hello(rid=rid, macs=(mac,), state="init", stage=Stage.STAGE1, boot_id="b"))

    def ready(mac: str) -> bytes:
        nonlocal rid
        rid += 1
        return codec.encode(CheckIn(rid=rid, node=mac, state="ready", boot_id="b"))

    start.wait()
    t0 = time.perf_counter()
    for mac in macs:  # phase 1: boot on new nodes
        request(hello(mac))
    for _ in range(6):  # phase 2: ready ×6
        for mac in macs:
            request(ready(mac))
    for mac in macs:  # phase 3: reboot
        request(hello(mac))
    for mac in macs:  # phase 4: ready
        request(ready(mac))
    out.put((time.perf_counter() - t0, errors))
    sock.close()
    ctx.term()


def daemon_bench(endpoint: str, round_no: int, pid: int) -> tuple[float, float, int]:
    """Run the 32×16 shape once; returns (requests/s, server CPU µs per request, errors)."""
    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    procs = [mpc.Process(target=_bench_client, args=(endpoint, round_no, c, start, out)) for c in range(CLIENTS)]
    for p in procs:
        p.start()
    time.sleep(0.3)  # let every client connect before the clock starts
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=300) for _ in procs]
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    for p in procs:
        p.join()
    requests = CLIENTS * NODES_PER_CLIENT * 9
    return requests / wall, cpu / requests * 1e6, sum(e for _, e in results)


# ---------------------------------------------------------------------------------------------- storm


def _storm_client(endpoint: str, macs: list[str], start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, len(macs) + 64)
    frames = [
        codec.encode(Hello(rid=i + 1, macs=(m,), state="init", stage=Stage.STAGE1, boot_id="s"))
        for i, m in enumerate(macs)
    ]
    start.wait()
    socks = []
    for frame in frames:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        s.send(frame)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    got = 0
    last = time.time()
    deadline = time.monotonic() + 60
    while got < len(socks) and time.monotonic() < deadline:
        for s, _ in poller.poll(1000):
            s.recv_multipart()
            poller.unregister(s)
            got += 1
            last = time.time()
    out.put((got, last))
    for s in socks:
        s.close(linger=0)
    ctx.term()


def storm(endpoint: str, nodes: int, procs: int = 4) -> tuple[float, int]:
    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    macs = [f"0E:00:00:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}" for i in range(nodes)]
    share = [macs[i::procs] for i in range(procs)]
    workers = [mpc.Process(target=_storm_client, args=(endpoint, part, start, out)) for part in share]
    for w in workers:
        w.start()
    time.sleep(1.0)
    t0 = time.time()
    start.set()
    results = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join()
    got = sum(g for g, _ in results)
    return max(last for _, last in results) - t0, nodes - got


# ---------------------------------------------------------------------------------------------- servers


def start_echo() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def seed_storm_nodes(paths: Paths, nodes: int) -> None:
    with SQLiteStore(paths.database) as store:
        store.import_nodes(
            [
                NewNode(
                    nodeid=f"0E:00:00:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}", hostname=f"s{i:05d}"
                )
                for i in range(nodes)
            ],
            update=True,
        )


@dataclass
class Row:
    bench: str
    peer: str
    ratios: list[float]
    absolute: list[float]
    unit: str
    target: str
    met: bool


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


MODES = {"--legacy": "legacy", "--fleet": "fleet", "--curve": "curve", "--backend": "multimaster"}


def dispatch_mode(argv: list[str]) -> int | None:
    """Run another benchmark module when its flag is given (it receives the remaining arguments)."""
    for flag, module in MODES.items():
        if flag in argv or any(a.startswith(flag + "=") for a in argv):
            rest = [a for a in argv if a != flag] if flag != "--backend" else argv
            mod = importlib.import_module(f"bench.{module}")
            sys.argv = [f"bench.{module}", *rest]
            takes_argv = bool(inspect.signature(mod.main).parameters)
            return int((mod.main(rest) if takes_argv else mod.main()) or 0)
    return None


def main() -> int:
    mode = dispatch_mode(sys.argv[1:])
    if mode is not None:
        return mode
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short round of each, for smoke use")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--storm-nodes", type=int, default=10_000)
    ap.add_argument("--storm-rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = 1 if args.quick else max(5, args.rounds)
    storm_rounds = 1 if args.quick else args.storm_rounds
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        pass

    work = Path(tempfile.mkdtemp(prefix="perceus-bench-"))
    paths = Paths(work / "etc", work / "var")
    paths.ensure()
    paths.defaults_conf.write_text("Node Name = n#####\nGroup Name = bench\n")
    echo, echo_ep = start_echo()
    bus: RunningBus = start_local_bus(paths)
    print(
        f"# python {platform.python_version()}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, "
        f"sqlite {sqlite3.sqlite_version}, somaxconn "
        f"{Path('/proc/sys/net/core/somaxconn').read_text().strip()}, nofile "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, cpus {os.cpu_count()}",
        flush=True,
    )
    ratios, bus_rates, echo_rates, bus_cpu, echo_cpu = [], [], [], [], []
    try:
        daemon_bench(echo_ep, 250, echo.pid)  # warm-up (not counted)
        for r in range(rounds):
            e_rate, e_cpu, e_err = daemon_bench(echo_ep, r, echo.pid)
            b_rate, b_cpu, b_err = daemon_bench(bus.endpoint, r, bus.proc.pid)
            ratios.append(b_rate / e_rate)
            bus_rates.append(b_rate)
            echo_rates.append(e_rate)
            bus_cpu.append(b_cpu)
            echo_cpu.append(e_cpu)
            print(
                f'{{"round": {r}, "bench": "daemon_bench", "bus_per_s": {b_rate:.0f}, "echo_per_s": {e_rate:.0f}, '
                f'"ratio": {b_rate / e_rate:.3f}, "bus_cpu_us": {b_cpu:.1f}, "echo_cpu_us": {e_cpu:.1f}, '
                f'"errors": {b_err + e_err}}}',
                flush=True,
            )
        bus.stop()
        storm_nodes = 1000 if args.quick else args.storm_nodes
        seed_storm_nodes(paths, storm_nodes)
        storm_s, storm_lost, echo_storm = [], [], []
        for r in range(storm_rounds):
            fresh = start_local_bus(paths)  # a fresh server: every connection in the storm is new
            try:
                secs, lost = storm(fresh.endpoint, storm_nodes)
            finally:
                fresh.stop()
            echo.kill()
            echo.wait()
            echo, echo_ep = start_echo()
            e_secs, _ = storm(echo_ep, storm_nodes)
            storm_s.append(secs)
            storm_lost.append(lost)
            echo_storm.append(e_secs)
            print(
                f'{{"round": {r}, "bench": "storm", "nodes": {storm_nodes}, "bus_s": {secs:.2f}, "lost": {lost}, '
                f'"echo_s": {e_secs:.2f}}}',
                flush=True,
            )
    finally:
        echo.kill()
        bus.stop()

    rows = [
        Row(
            "daemon_bench 32×16 (init, ready×6, init, ready)",
            "bare pyzmq ROUTER echo",
            ratios,
            bus_rates,
            "check-ins/s",
            "≥ 0.6× echo",
            med(ratios) >= 0.6,
        ),
        Row(
            "server CPU per check-in",
            "echo CPU per message",
            [b / e for b, e in zip(bus_cpu, echo_cpu, strict=True)],
            bus_cpu,
            "µs",
            "(info)",
            True,
        ),
        Row(
            f"storm {storm_nodes} nodes, hello at once",
            "same storm on echo",
            [s / e for s, e in zip(storm_s, echo_storm, strict=True)],
            storm_s,
            "s to last reply",
            "≤ 5 s, 0 lost",
            med(storm_s) <= 5 and max(storm_lost) == 0,
        ),
    ]
    print()
    print("| bench | peer | ratio median [min–max] | absolute median | target | met |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.bench} | {row.peer} | {med(row.ratios):.2f} [{min(row.ratios):.2f}–{max(row.ratios):.2f}] "
            f"| {med(row.absolute):.1f} {row.unit} | {row.target} | {'yes' if row.met else 'no'} |"
        )
    print(f"echo: {med(echo_rates):.0f} req/s; original perceusd: ~27 check-ins/s on this kind of machine")
    print(f"checkin_vs_echo={med(ratios):.2f} storm_10k_s={med(storm_s):.2f} storm_lost={max(storm_lost)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
