"""Legacy TCP 987 benchmark on a 1.x-shaped node-script tree: perceus-bus's legacy listener against an ideal server.

Tree (the shape of a 1.x install with its stock modules activated): init/all holds a static 00-init.sh and the
stock generators 49-hostname.sh (sh) and 50-masterauth.pl (Perl), verbatim from Perceus 1.9.3
(tests/data/stock1x/); ready/all holds the same two generators and a static 10-ready.sh.  So every request
runs a shell and a Perl generator, as on a 1.x master.

Workload: the original daemon-bench.pl shape: 512 nodes as 32 concurrent clients × 16 nodes, each client
strictly sequential, one TCP connection per request: init (new nodes: auto-add; read to `# PROVISIOND END`),
ready ×6 (read the first line only, as daemon-bench did), init again, ready = 4,608 connections per round,
fresh node IDs every round.  Measured in the same run, rounds interleaved, medians:
  native     perceus-bus, stock generators produced natively (legacy/stock_generators.py; byte-identical)
  processes  the same perceus-bus with every generator run as a process (what a 1.x master does)
  ideal      an asyncio server that sends a pre-rendered reply of the same bytes: no store, no scripts
The original perceusd (Perl, fork per request) is not run here: it needs its own 1.x install and Perl
modules this machine does not have, so the peer is the ideal server.

The last line is exactly:
  legacy_conn_per_s=<n> processes_conn_per_s=<n> ideal_conn_per_s=<n> vs_ideal=<r> native_vs_processes=<r>
Usage: python -m bench.legacy [--smoke] [--rounds N] [--clients N] [--nodes-per-client N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import REPO

STOCK = REPO / "tests" / "data" / "stock1x" / "modules"
GENERATORS = ("hostname/49-hostname.sh", "masterauth/50-masterauth.pl")
INIT_SCRIPT = "#!/bin/sh\n" + "".join(f"# line {i} of a typical 00-init.sh\nTRY{i}=1\n" for i in range(40))
READY_SCRIPT = "#!/bin/sh\nhostname $NODENAME 2>/dev/null\n"
TARGETS = ("native", "processes", "ideal")
PHASES = (
    ("init", "init", True, 1),
    ("ready x6", "ready", False, 6),
    ("reboot", "init", True, 1),
    ("ready", "ready", False, 1),
)


def make_tree(nodescripts: Path) -> None:
    """The 1.x shape: static scripts plus the stock sh and Perl generators in init/all and ready/all."""
    (nodescripts / "init" / "all").mkdir(parents=True, exist_ok=True)
    (nodescripts / "ready" / "all").mkdir(parents=True, exist_ok=True)
    (nodescripts / "init" / "all" / "00-init.sh").write_text(INIT_SCRIPT)
    (nodescripts / "ready" / "all" / "10-ready.sh").write_text(READY_SCRIPT)
    for state in ("init", "ready"):
        for rel in GENERATORS:
            (nodescripts / state / "all" / Path(rel).name).symlink_to(STOCK / rel)


def serve_ours(ready: mp.connection.Connection, native: bool) -> None:
    """Child process: a BusServer with the legacy listener on 127.0.0.1, fresh state dir."""
    import structlog

    from perceus.master.bus.handlers import Dispatcher
    from perceus.master.bus.server import BusServer
    from perceus.master.config import Paths
    from perceus.master.legacy.listener import LegacyListener
    from perceus.master.nodescripts import NodeScripts
    from perceus.master.store.sqlite import SQLiteStore

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    tmp = tempfile.mkdtemp(prefix="perceus-legacy-bench-")
    paths = Paths(Path(tmp) / "etc", Path(tmp) / "var")
    paths.ensure()
    make_tree(paths.nodescripts)
    store = SQLiteStore(paths.database)
    dispatcher = Dispatcher(store=store, paths=paths)
    if not native:
        dispatcher.scripts = NodeScripts(paths.nodescripts, clock=time.monotonic, native=False)
    server = BusServer(dispatcher, bind="tcp://127.0.0.1:*")
    listener = LegacyListener(server, dispatcher, host="127.0.0.1", port=0)
    ready.send(listener.port)
    server.serve(install_signals=True)


def ideal_reply() -> bytes:
    """What the bus sends a node for init on this tree, rendered once (so the ideal peer sends the same bytes)."""
    from perceus.master.legacy import wire
    from perceus.master.nodescripts import NodeScripts, environment
    from perceus.master.store.models import Node

    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp))
        node = Node(nodeid="00:00:00:00:00:01", hostname="n00000", group="", vnfs="", enabled=True, ip="127.0.0.1")
        scripts = NodeScripts(Path(tmp))
        bodies = [s.body for s in scripts.render(scripts.plan("init", node), environment(node, "init", Path(tmp), ""))]
    return wire.script_reply(bodies)


def serve_ideal(ready: mp.connection.Connection, reply: bytes) -> None:
    """Child process: the ideal peer, same markers and bytes, pre-rendered, nothing else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"# PERCEUSD START\n")
        try:
            await reader.readline()
            writer.write(reply)
            await writer.drain()
        except OSError:
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        ready.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def one(port: int, state: str, mac: str, full: bool) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{state} nodeid={mac}\n\0".encode())
        if not full:
            return (await reader.readline()).startswith(b"# PERCEUSD START")
        data = await reader.read()
        return b"# PROVISIOND END\n" in data
    finally:
        writer.close()


async def client_run(port: int, clients: int, per_client: int) -> tuple[dict[str, float], int]:
    """Every phase with `clients` concurrent sequential clients; seconds per phase and failures."""
    macs = [
        [
            f"00:00:{random.getrandbits(32):08X}"[:5] + ":" + ":".join(f"{random.getrandbits(8):02X}" for _ in range(4))
            for _ in range(per_client)
        ]
        for _ in range(clients)
    ]
    failures = 0
    timings: dict[str, float] = {}
    for label, state, full, repeat in PHASES:

        async def worker(nodes: list[str], state: str = state, full: bool = full, repeat: int = repeat) -> int:
            bad = 0
            for _ in range(repeat):
                for mac in nodes:
                    try:
                        bad += not await one(port, state, mac, full)
                    except OSError:
                        bad += 1
            return bad

        started = time.perf_counter()
        failures += sum(await asyncio.gather(*(worker(n) for n in macs)))
        timings[label] = time.perf_counter() - started
    return timings, failures


def measure(target: str, clients: int, per_client: int, reply: bytes) -> tuple[dict[str, float], int]:
    parent, child = mp.Pipe()
    args = (child, reply) if target == "ideal" else (child, target == "native")
    proc = mp.Process(target=serve_ideal if target == "ideal" else serve_ours, args=args, daemon=True)
    proc.start()
    try:
        port = parent.recv()
        return asyncio.run(client_run(port, clients, per_client))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.join(5)
        if proc.is_alive():
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.legacy", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--nodes-per-client", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--smoke", action="store_true", help="seconds: one round of 4 clients x 4 nodes")
    args = ap.parse_args(argv)
    if args.quick or args.smoke:
        args.rounds = 1
    if args.smoke:
        args.clients = args.nodes_per_client = 4
    per_round = args.clients * args.nodes_per_client * sum(r for *_, r in PHASES)
    reply = ideal_reply()
    results: dict[str, list[tuple[dict[str, float], int]]] = {t: [] for t in TARGETS}
    for _ in range(args.rounds):
        for target in TARGETS:
            results[target].append(measure(target, args.clients, args.nodes_per_client, reply))
    print(
        f"legacy TCP 987, daemon-bench shape: {args.clients} clients x {args.nodes_per_client} nodes, "
        f"{per_round} connections/round, {args.rounds} round(s) (median), {os.cpu_count()} CPUs; 1.x tree: "
        f"stock 49-hostname.sh + 50-masterauth.pl in init/all and ready/all, init reply {len(reply)} bytes"
    )
    print(f"{'phase':<10} {'conns':>6} " + " ".join(f"{t + ' c/s':>13}" for t in TARGETS))
    for label, _, _, repeat in PHASES:
        n = args.clients * args.nodes_per_client * repeat
        rates = [n / statistics.median(r[0][label] for r in results[t]) for t in TARGETS]
        print(f"{label:<10} {n:>6} " + " ".join(f"{x:>13.0f}" for x in rates))
    total = {t: statistics.median(per_round / sum(r[0].values()) for r in results[t]) for t in TARGETS}
    fails = {t: sum(r[1] for r in results[t]) for t in TARGETS}
    print(f"{'total':<10} {per_round:>6} " + " ".join(f"{total[t]:>13.0f}" for t in TARGETS))
    print("failures: " + ", ".join(f"{t}={fails[t]}" for t in TARGETS))
    print(
        f"legacy_conn_per_s={total['native']:.0f} processes_conn_per_s={total['processes']:.0f} "
        f"ideal_conn_per_s={total['ideal']:.0f} vs_ideal={total['native'] / total['ideal']:.2f} "
        f"native_vs_processes={total['native'] / total['processes']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
