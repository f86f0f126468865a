"""Check-in benchmark: perceus-bus (SQLite, group commit, Curve on) against a bare pyzmq ROUTER echo (Curve on).

Both sides run the product's default configuration: CurveZMQ, every node its own key (one DEALER per node),
handshakes done before the clock starts; the echo peer is a CURVE_SERVER too, so the ratio is like for like.
Workloads (issue 3, 1.x ref §10.3):
  daemon-bench shape — 512 nodes, 32 concurrent client processes × 16 nodes, each node: init, ready×6, init,
  ready (4,608 requests); fresh node IDs every round, so every round auto-adds 512 nodes.  Same clients and
  message sizes against the echo peer, ≥ 5 interleaved rounds, median of per-round ratios.
  storm — N distinct known nodes (10,000; --quick 1,000) each with a fresh key connect (one Curve handshake
  each) and send `hello init` at once from 4 processes; seconds until the last reply and replies lost (fresh
  perceus-bus per round); the bus's peak RSS with N nodes enrolled.

The line before the last names the configuration and memory: `security=curve bus_rss_mb=<MB>`.
The last line is exactly (the shape of wave 1's, with the storm's node count beside its time):
  checkin_vs_echo=<ratio> storm_s=<seconds> storm_nodes=<n> storm_lost=<n>
Usage: python -m bench.checkin [--quick | --smoke] [--rounds N] [--storm-nodes N]

Other check-in benchmarks live in their own modules and are reached from here:
  --legacy                          bench.legacy: Perceus 1.x TCP 987 clients (one connection per request)
  --fleet                           bench.fleet: 10k provisiond agents at a jittered 60 s interval
  --curve                           bench.curve: CurveZMQ on vs off
  --backend postgresql --masters …  bench.multimaster: 1, 2, 3 masters on PostgreSQL vs SQLite
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
from zmq.utils import z85

from perceus.agent.bus import CurveClient
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import CheckIn, Error, Hello

ECHO_SERVER = r"""
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.BACKLOG, 4096); s.setsockopt(zmq.RCVHWM, 100000); s.setsockopt(zmq.SNDHWM, 100000)
public, secret = zmq.curve_keypair()
s.setsockopt(zmq.CURVE_SERVER, 1); s.setsockopt(zmq.CURVE_SECRETKEY, secret)
s.bind("tcp://127.0.0.1:0")
print(s.getsockopt(zmq.LAST_ENDPOINT).decode(), public.decode(), flush=True)
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


@dataclass(frozen=True)
class Server:
    """Where a benchmark client connects and the server's CurveZMQ public key (32 bytes)."""

    endpoint: str
    key: bytes


def node_socket(ctx: zmq.Context[zmq.Socket[bytes]], server: Server) -> zmq.Socket[bytes]:
    """One node's DEALER: its own fresh CurveZMQ keypair, as every booting node has (agent BusClient's hook)."""
    sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    CurveClient(server.key)(sock)
    sock.connect(server.endpoint)
    return sock


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- daemon-bench


def _bench_client(
    server: Server,
    round_no: int,
    client: int,
    start: mp.Event,  # type: ignore[type-arg]
    out: mp.Queue,  # type: ignore[type-arg]
    nodes: int = NODES_PER_CLIENT,
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    macs = [f"0A:{round_no:02X}:{client:02X}:{i:02X}:{os.getpid() & 0xFF:02X}:01" for i in range(nodes)]
    socks = {mac: node_socket(ctx, server) for mac in macs}
    for sock in socks.values():  # IMMEDIATE: writable once the Curve handshake is done (before the clock)
        sock.setsockopt(zmq.IMMEDIATE, 1)
    for sock in socks.values():
        sock.poll(10_000, zmq.POLLOUT)
    rid = 0
    errors = 0

    def request(mac: str, frame: bytes) -> None:
        nonlocal errors
        sock = socks[mac]
        sock.send(frame)
        if not sock.poll(30000):
            errors += 1
            return
        reply = codec.decode(sock.recv_multipart()[0])
        if reply.rid != rid or isinstance(reply, Error):
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
        request(mac, hello(mac))
    for _ in range(6):  # phase 2: ready ×6
        for mac in macs:
            request(mac, ready(mac))
    for mac in macs:  # phase 3: reboot
        request(mac, hello(mac))
    for mac in macs:  # phase 4: ready
        request(mac, ready(mac))
    out.put((time.perf_counter() - t0, errors))
    for sock in socks.values():
        sock.close()
    ctx.term()


def daemon_bench(
    server: Server, round_no: int, pid: int, clients: int = CLIENTS, nodes: int = NODES_PER_CLIENT
) -> tuple[float, float, int]:
    """Run the clients×nodes shape once; returns (requests/s, server CPU µs per request, errors)."""
    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    procs = [mpc.Process(target=_bench_client, args=(server, round_no, c, start, out, nodes)) for c in range(clients)]
    for p in procs:
        p.start()
    time.sleep(0.3 + clients * nodes / 1000)  # let every client connect (and handshake) before the clock
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=300) for _ in procs]
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    for p in procs:
        p.join()
    requests = clients * nodes * 9
    return requests / wall, cpu / requests * 1e6, sum(e for _, e in results)


# ---------------------------------------------------------------------------------------------- storm


def _storm_client(server: Server, macs: list[str], start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, len(macs) + 64)
    frames = [
        codec.encode(Hello(rid=i + 1, macs=(m,), state="init", stage=Stage.STAGE1, boot_id="s"))
        for i, m in enumerate(macs)
    ]
    curves = [CurveClient(server.key) for _ in macs]  # every node its own keypair, made before the clock
    start.wait()
    socks = []
    for frame, curve in zip(frames, curves, strict=True):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        curve(s)
        s.connect(server.endpoint)
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


def storm(server: Server, nodes: int, procs: int = 4) -> tuple[float, int]:
    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    macs = [f"0E:00:00:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}" for i in range(nodes)]
    share = [macs[i::procs] for i in range(procs)]
    workers = [mpc.Process(target=_storm_client, args=(server, part, start, out)) for part in share]
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


def start_echo() -> tuple[subprocess.Popen[str], Server]:
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    endpoint, key = proc.stdout.readline().split()
    return proc, Server(endpoint, z85.decode(key))


def start_curve_bus(paths: Paths) -> tuple[RunningBus, Server]:
    """perceus-bus in its default configuration (Curve on) and its public key."""
    keys, _ = master_keys.ensure(paths)
    bus = start_local_bus(paths, security="curve")
    return bus, Server(bus.endpoint, keys.bus_public)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
    met: bool | None  # None: the target is for another size than was run


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
    ap = argparse.ArgumentParser(prog="python -m bench.checkin", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one round; a 1,000-node storm")
    ap.add_argument("--smoke", action="store_true", help="seconds: 4 clients × 4 nodes, a 200-node storm")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--storm-nodes", type=int, default=0, help="default 10,000 (--quick 1,000, --smoke 200)")
    ap.add_argument("--storm-rounds", type=int, default=3)
    args = ap.parse_args()
    short = args.quick or args.smoke
    rounds = 1 if short else max(5, args.rounds)
    storm_rounds = 1 if short else args.storm_rounds
    clients, nodes = (4, 4) if args.smoke else (CLIENTS, NODES_PER_CLIENT)
    storm_nodes = args.storm_nodes or (200 if args.smoke else 1000 if args.quick else 10_000)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        pass

    work = Path(tempfile.mkdtemp(prefix="perceus-bench-"))
    paths = Paths(work / "etc", work / "var")
    paths.ensure()
    paths.defaults_conf.write_text("Node Name = n#####\nGroup Name = bench\n")
    echo, echo_srv = start_echo()
    bus, bus_srv = start_curve_bus(paths)
    print(
        f"# python {platform.python_version()}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, "
        f"sqlite {sqlite3.sqlite_version}, somaxconn "
        f"{Path('/proc/sys/net/core/somaxconn').read_text().strip()}, nofile "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, cpus {os.cpu_count()}; Curve on (bus and echo)",
        flush=True,
    )
    ratios, bus_rates, echo_rates, bus_cpu, echo_cpu = [], [], [], [], []
    storm_s, storm_lost, echo_storm, rss, echo_rss = [], [], [], [], []
    try:
        daemon_bench(echo_srv, 250, echo.pid, clients, nodes)  # warm-up (not counted)
        for r in range(rounds):
            e_rate, e_cpu, e_err = daemon_bench(echo_srv, r, echo.pid, clients, nodes)
            b_rate, b_cpu, b_err = daemon_bench(bus_srv, r, bus.proc.pid, clients, nodes)
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
        seed_storm_nodes(paths, storm_nodes)
        for r in range(storm_rounds):
            fresh, fresh_srv = start_curve_bus(paths)  # a fresh server: every connection in the storm is new
            try:
                secs, lost = storm(fresh_srv, storm_nodes)
                rss.append(peak_rss_mb(fresh.proc.pid))
            finally:
                fresh.stop()
            echo.kill()
            echo.wait()
            echo, echo_srv = start_echo()
            e_secs, _ = storm(echo_srv, storm_nodes)
            echo_rss.append(peak_rss_mb(echo.pid))
            storm_s.append(secs)
            storm_lost.append(lost)
            echo_storm.append(e_secs)
            print(
                f'{{"round": {r}, "bench": "storm", "nodes": {storm_nodes}, "bus_s": {secs:.2f}, "lost": {lost}, '
                f'"echo_s": {e_secs:.2f}, "bus_peak_rss_mb": {rss[-1]:.0f}, '
                f'"echo_peak_rss_mb": {echo_rss[-1]:.0f}}}',
                flush=True,
            )
    finally:
        echo.kill()
        bus.stop()

    rows = [
        Row(
            f"daemon_bench {clients}×{nodes} (init, ready×6, init, ready)",
            "bare pyzmq ROUTER echo (Curve)",
            ratios,
            bus_rates,
            "check-ins/s",
            "≥ 0.6× echo",
            med(ratios) >= 0.6,
        ),
        Row(
            "server CPU per check-in",
            "echo CPU per message",
            [b / e if e else float("nan") for b, e in zip(bus_cpu, echo_cpu, strict=True)],  # CPU ticks: 10 ms
            bus_cpu,
            "µs",
            "(info)",
            True,
        ),
        Row(
            f"storm {storm_nodes} nodes, hello at once",
            "same storm on echo (Curve)",
            [s / e for s, e in zip(storm_s, echo_storm, strict=True)],
            storm_s,
            "s to last reply",
            "≤ 5 s, 0 lost (10k)",
            med(storm_s) <= 5 and max(storm_lost) == 0 if storm_nodes >= 10_000 else None,
        ),
        Row(
            f"bus peak RSS, {storm_nodes} nodes enrolled",
            "echo peak RSS after the same storm",
            [b / e if e else float("nan") for b, e in zip(rss, echo_rss, strict=True)],
            rss,
            "MB",
            "≤ 200 MB (10k)",
            med(rss) <= 200 if storm_nodes >= 10_000 else None,
        ),
    ]
    print()
    print("| bench | peer | ratio median [min–max] | absolute median | target | met |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        met = "n/a" if row.met is None else "yes" if row.met else "no"
        print(
            f"| {row.bench} | {row.peer} | {med(row.ratios):.2f} [{min(row.ratios):.2f}–{max(row.ratios):.2f}] "
            f"| {med(row.absolute):.1f} {row.unit} | {row.target} | {met} |"
        )
    print(f"echo: {med(echo_rates):.0f} req/s")
    print(f"security=curve bus_rss_mb={med(rss):.0f}")
    print(
        f"checkin_vs_echo={med(ratios):.2f} storm_s={med(storm_s):.2f} storm_nodes={storm_nodes} "
        f"storm_lost={max(storm_lost)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
