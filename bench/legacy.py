"""Legacy TCP 987 benchmark: perceus-bus's legacy listener against an ideal asyncio marker server.

Workload: the original daemon-bench.pl (spec §10.3): 512 nodes as 32 concurrent clients × 16 nodes, each
client strictly sequential, one TCP connection per request: init (new nodes: auto-add; read to
`# PROVISIOND END`), ready ×6 (read the first line only, as daemon-bench did), init again, ready = 4,608
connections per round, fresh node IDs every round.  Peer in the same run: a trivial asyncio server that
sends the same markers around a fixed script, with no store and no node scripts (the "ideal").  Rounds
alternate ours/peer; the table shows the median.  The original perceusd manages about 30 connections/s on
this kind of machine (issue 11; not re-measured here: it needs the Perl daemon).

The last line is exactly: legacy_conn_per_s=<n> ideal_conn_per_s=<n> vs_ideal=<ratio> vs_1x=<ratio>
Usage: bench/legacy.py [--rounds N] [--clients N] [--nodes-per-client N] [--generator]
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

ORIGINAL_CONN_PER_S = 30.0
INIT_SCRIPT = "#!/bin/sh\n" + "".join(f"# line {i} of a typical 00-init.sh\nTRY{i}=1\n" for i in range(40))
READY_SCRIPT = "#!/bin/sh\nhostname $NODENAME 2>/dev/null\n"
PHASES = (
    ("init", "init", True, 1),
    ("ready x6", "ready", False, 6),
    ("reboot", "init", True, 1),
    ("ready", "ready", False, 1),
)


def serve_ours(ready: mp.connection.Connection, generator: bool) -> None:
    """Child process: a BusServer with the legacy listener on 127.0.0.1, fresh state dir."""
    import structlog

    from perceus.master.bus.handlers import Dispatcher
    from perceus.master.bus.server import BusServer
    from perceus.master.config import Paths
    from perceus.master.legacy.listener import LegacyListener
    from perceus.master.store.sqlite import SQLiteStore

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    tmp = tempfile.mkdtemp(prefix="perceus-legacy-bench-")
    paths = Paths(Path(tmp) / "etc", Path(tmp) / "var")
    paths.ensure()
    (paths.nodescripts / "init" / "all" / "00-init.sh").write_text(INIT_SCRIPT)
    (paths.nodescripts / "ready" / "all" / "10-ready.sh").write_text(READY_SCRIPT)
    if generator:
        gen = paths.nodescripts / "init" / "all" / "49-hostname.sh"
        gen.write_text('#!/bin/sh\necho "hostname $NODENAME"\n')
        gen.chmod(0o755)
    store = SQLiteStore(paths.database)
    dispatcher = Dispatcher(store=store, paths=paths)
    server = BusServer(dispatcher, bind="tcp://127.0.0.1:*")
    listener = LegacyListener(server, dispatcher, host="127.0.0.1", port=0)
    ready.send(listener.port)
    server.serve(install_signals=True)


def serve_ideal(ready: mp.connection.Connection) -> None:
    """Child process: the ideal peer, same markers, fixed script, nothing else."""
    reply = ("# NODESCRIPT START\n" + INIT_SCRIPT + "# NODESCRIPT END\n# PROVISIOND END\n").encode()

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


def measure(target: str, clients: int, per_client: int, generator: bool) -> tuple[dict[str, float], int]:
    parent, child = mp.Pipe()
    proc = mp.Process(
        target=serve_ours if target == "ours" else serve_ideal,
        args=(child, generator) if target == "ours" else (child,),
        daemon=True,
    )
    proc.start()
    try:
        port = parent.recv()
        return asyncio.run(client_run(port, clients, per_client))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.join(5)
        if proc.is_alive():
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--nodes-per-client", type=int, default=16)
    ap.add_argument("--generator", action="store_true", help="add a master-side generator to init (worker path)")
    args = ap.parse_args()
    per_round = args.clients * args.nodes_per_client * sum(r for *_, r in PHASES)
    results: dict[str, list[tuple[dict[str, float], int]]] = {"ours": [], "ideal": []}
    for _ in range(args.rounds):
        for target in ("ours", "ideal"):
            results[target].append(measure(target, args.clients, args.nodes_per_client, args.generator))
    print(
        f"legacy TCP 987, daemon-bench shape: {args.clients} clients x {args.nodes_per_client} nodes, "
        f"{per_round} connections/round, {args.rounds} rounds (median), {os.cpu_count()} CPUs"
        + (", with a master-side generator" if args.generator else "")
    )
    print(f"{'phase':<10} {'conns':>6} {'legacy s':>9} {'legacy c/s':>11} {'ideal s':>8} {'ideal c/s':>10}")
    total: dict[str, float] = {}
    for label, _, _, repeat in PHASES:
        n = args.clients * args.nodes_per_client * repeat
        row = [statistics.median(r[0][label] for r in results[t]) for t in ("ours", "ideal")]
        print(f"{label:<10} {n:>6} {row[0]:>9.3f} {n / row[0]:>11.0f} {row[1]:>8.3f} {n / row[1]:>10.0f}")
    for t in ("ours", "ideal"):
        total[t] = statistics.median(per_round / sum(r[0].values()) for r in results[t])
    fails = {t: sum(r[1] for r in results[t]) for t in results}
    print(
        f"{'total':<10} {per_round:>6} {'':>9} {total['ours']:>11.0f} {'':>8} {total['ideal']:>10.0f}"
        f"   failures: legacy={fails['ours']} ideal={fails['ideal']}"
    )
    print(
        f"legacy_conn_per_s={total['ours']:.0f} ideal_conn_per_s={total['ideal']:.0f} "
        f"vs_ideal={total['ours'] / total['ideal']:.2f} vs_1x={total['ours'] / ORIGINAL_CONN_PER_S:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
