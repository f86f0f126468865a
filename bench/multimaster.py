"""Multi-master benchmark: 1, 2 and 3 perceus-bus masters on one PostgreSQL next to one master on SQLite.

Workloads (issue 9), all in the same run on the same machine:
  daemon-bench shape — bench/checkin.py's 32 client processes × 16 nodes (init, ready×6, init, ready; 4,608
  requests, 512 auto-adds per round), the clients split round-robin over the masters of the setup.  Peer:
  one master on SQLite, interleaved round by round.  CPU is the masters' plus PostgreSQL's (all backends).
  failover — N simulated agents (tests/integration/multimaster/agents.py: BusClients knowing all 3 masters,
  2 s timeout, jittered back-off) check in every second; one master is SIGKILLed; each affected request's
  time from first send to the answer from another master, p50/p99/max.  Peer: the agents' own timeout, the
  floor any failover by silence has.

Usage: python -m bench.multimaster [--backend postgresql] [--masters 1,2,3] [--rounds N] [--quick | --smoke]
[--agents N] (also: python -m bench.checkin --backend postgresql --masters 1,2,3).  Needs the PostgreSQL server
binaries (apt-get install postgresql) and psycopg; the cluster is a throwaway one in a temp dir.
Check-ins run the default configuration, Curve on (every node its own key); the failover masters run without
Curve because the simulated agents speak plaintext.  The last line is exactly:
  pg_1m=<ratio> pg_3m=<ratio> pg_3m_cpu_us=<µs> failover_p50_s=<s> failover_p99_s=<s> lost=<n> security=curve
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import REPO, checkin
from perceus.lab.bus import RunningBus, namespace_roots, start_local_bus
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys

PG_BIN = Path(os.environ.get("PERCEUS_PG_BIN", "/usr/lib/postgresql/15/bin"))
AGENTS = REPO / "tests" / "integration" / "multimaster" / "agents.py"
AGENT_TIMEOUT = 2.0


# ---------------------------------------------------------------------------------------------- PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def pg_server() -> Iterator[tuple[str, Path]]:
    """A throwaway PostgreSQL (fsync off, as the tests' fixture); yields (admin URL prefix, data dir)."""
    root = Path(tempfile.mkdtemp(prefix="perceus-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "--no-sync"]),
        check=True,
        capture_output=True,
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}", data
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def pg_cpu(data: Path) -> float:
    """CPU seconds of the postmaster, its live backends and every backend that already exited."""
    pid = int((data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    total = sum(int(f) for f in fields[11:15]) / tck  # utime, stime, cutime, cstime (reaped backends)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            total += checkin.cpu_seconds(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def create_database(admin: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    return f"{admin}/{name}"


# ---------------------------------------------------------------------------------------------- masters


def configure(paths: Paths, database: str, security: str) -> None:
    paths.ensure()
    # No per-IP rate limit (every client is 127.0.0.1): the same for every setup in the table.
    paths.perceus_conf.write_text(
        f"database type = {database}\nbus security = {security}\nbus rate limit = 0\ncheckin interval = 60\n"
    )
    paths.defaults_conf.write_text("Node Name = n#####\nGroup Name = bench\n")


def start_masters(work: Path, tag: str, database: str, count: int, security: str = "curve") -> list[RunningBus]:
    """`count` masters on `database`; Curve on (the default) unless `security` says otherwise."""
    buses = []
    for i in range(count):
        paths = Paths(work / f"{tag}-{i}" / "etc", work / f"{tag}-{i}" / "var")
        configure(paths, database, security)
        if security == "curve":
            master_keys.ensure(paths)
        buses.append(start_local_bus(paths, bind=f"tcp://127.0.0.1:{_free_port()}", security=security))
    return buses


def server_of(bus: RunningBus) -> checkin.Server:
    keys = master_keys.load(bus.paths)
    assert keys is not None
    return checkin.Server(bus.endpoint, keys.bus_public)


def split_bench(
    buses: list[RunningBus],
    round_no: int,
    data: Path | None,
    clients: int = checkin.CLIENTS,
    nodes: int = checkin.NODES_PER_CLIENT,
) -> tuple[float, float, int]:
    """checkin.daemon_bench's shape (Curve, a key per node) with the clients split round-robin over `buses`."""
    servers = [server_of(b) for b in buses]
    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    procs = [
        mpc.Process(target=checkin._bench_client, args=(servers[c % len(servers)], round_no, c, start, out, nodes))
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    time.sleep(0.3 + clients * nodes / 1000)  # connected and handshaken before the clock

    def cpu() -> float:
        return sum(checkin.cpu_seconds(b.proc.pid) for b in buses) + (pg_cpu(data) if data else 0.0)

    cpu0 = cpu()
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=300) for _ in procs]
    wall = time.perf_counter() - t0
    used = cpu() - cpu0
    for p in procs:
        p.join()
    requests = clients * nodes * 9
    return requests / wall, used / requests * 1e6, sum(e for _, e in results)


# ---------------------------------------------------------------------------------------------- failover


def failover(
    buses: list[RunningBus], agents: int, procs: int = 3, duration: float = 12.0
) -> tuple[list[float], int, int]:
    """Agents over every master; the first master SIGKILLed 4 s in.  Returns (outages, lost, errors)."""
    addresses = [b.endpoint.removeprefix("tcp://") for b in buses]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([namespace_roots(), str(REPO)])}
    start_at = time.time() + 1.5
    per = agents // procs
    runners = [
        subprocess.Popen(
            [
                sys.executable,
                str(AGENTS),
                ",".join(addresses),
                str(900_000 + p * per),
                str(per),
                str(p),
                str(start_at),
                str(duration),
                "1.0",
                str(AGENT_TIMEOUT),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in range(procs)
    ]
    time.sleep(max(0.0, start_at + 4.0 - time.time()))
    buses[0].proc.send_signal(signal.SIGKILL)
    buses[0].proc.wait()
    results: dict[str, dict[str, object]] = {}
    for r in runners:
        out, err = r.communicate(timeout=120)
        if r.returncode != 0:
            raise RuntimeError(err)
        results.update(json.loads(out))
    outages = [float(o) for r in results.values() for o in r["outages"]]  # type: ignore[attr-defined]
    lost = sum(1 for r in results.values() if not r["done"] or r["acked"] != list(range(1, int(r["sent"]) + 1)))  # type: ignore[call-overload]
    errors = sum(len(r["errors"]) for r in results.values())  # type: ignore[arg-type]
    return outages, lost, errors


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="postgresql", choices=["postgresql"])
    ap.add_argument("--masters", default="1,2,3", help="master counts to measure on PostgreSQL")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agents", type=int, default=600, help="simulated agents in the failover run")
    ap.add_argument("--quick", action="store_true", help="one round, 300 agents")
    ap.add_argument("--smoke", action="store_true", help="seconds: one round of 4 clients × 4 nodes, 60 agents")
    args = ap.parse_args(argv)
    counts = sorted({int(c) for c in args.masters.split(",") if c.strip()})
    rounds = 1 if args.quick or args.smoke else max(1, args.rounds)
    agents = 60 if args.smoke else 300 if args.quick else args.agents
    shape = (4, 4) if args.smoke else (checkin.CLIENTS, checkin.NODES_PER_CLIENT)
    if not (PG_BIN / "initdb").exists():
        print(f"bench/multimaster.py: error: PostgreSQL server binaries not found in {PG_BIN}", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="perceus-bench-mm-"))
    running: list[RunningBus] = []
    with pg_server() as (admin, data):
        try:
            sqlite = start_masters(work, "sqlite", "sqlite", 1)
            setups: dict[str, list[RunningBus]] = {"sqlite ×1": sqlite}
            for n in counts:
                setups[f"postgresql ×{n}"] = start_masters(work, f"pg{n}", create_database(admin, f"bench{n}"), n)
            running = [b for buses in setups.values() for b in buses]
            print(f"# cpus {os.cpu_count()}, masters per setup: " + ", ".join(f"{k}" for k in setups), flush=True)
            split_bench(sqlite, 250, None, *shape)  # warm-up (not counted)
            rates: dict[str, list[float]] = {k: [] for k in setups}
            cpus: dict[str, list[float]] = {k: [] for k in setups}
            errors: dict[str, int] = {k: 0 for k in setups}
            for r in range(rounds):
                for i, (name, buses) in enumerate(setups.items()):
                    rate, cpu, err = split_bench(
                        buses, r * 8 + i, data if name.startswith("postgresql") else None, *shape
                    )
                    rates[name].append(rate)
                    cpus[name].append(cpu)
                    errors[name] += err
                    print(
                        json.dumps(
                            {"round": r, "setup": name, "per_s": round(rate), "cpu_us": round(cpu, 1), "errors": err}
                        ),
                        flush=True,
                    )
            # The failover agents (tests/integration/multimaster/agents.py) speak plaintext: these masters too.
            fail_buses = start_masters(work, "failover", create_database(admin, "failover"), 3, security="none")
            running += fail_buses
            outages, lost, fail_errors = failover(fail_buses, agents, duration=8.0 if args.smoke else 12.0)
        finally:
            for b in running:
                b.stop()
    shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(rates["sqlite ×1"])
    print()
    print("| setup | check-ins/s median [min–max] | vs SQLite ×1 | CPU µs/check-in (masters + PostgreSQL) | errors |")
    print("|---|---|---|---|---|")
    for name in rates:  # noqa: PLC0206 - keys in the table's order
        rs = rates[name]
        print(
            f"| {name} | {statistics.median(rs):.0f} [{min(rs):.0f}–{max(rs):.0f}] | "
            f"{statistics.median(rs) / base:.2f} | {statistics.median(cpus[name]):.0f} | {errors[name]} |"
        )
    print()
    print(
        "| failover (3 masters on PostgreSQL, one SIGKILLed) | p50 | p99 | max | peer: agent timeout | "
        "requests failed over | lost check-ins | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {agents} agents, 1 s interval | {pct(outages, 0.5):.2f} s | {pct(outages, 0.99):.2f} s | "
        f"{max(outages, default=float('nan')):.2f} s | {AGENT_TIMEOUT:.1f} s | {len(outages)} | {lost} | "
        f"{fail_errors} |"
    )
    pg1 = statistics.median(rates.get("postgresql ×1", [float("nan")])) / base
    pg3 = statistics.median(rates.get("postgresql ×3", [float("nan")])) / base
    cpu3 = statistics.median(cpus.get("postgresql ×3", [float("nan")]))
    print(
        f"pg_1m={pg1:.2f} pg_3m={pg3:.2f} pg_3m_cpu_us={cpu3:.0f} failover_p50_s={pct(outages, 0.5):.2f} "
        f"failover_p99_s={pct(outages, 0.99):.2f} lost={lost} security=curve"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
