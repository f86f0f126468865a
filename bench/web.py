"""perceus-web benchmark: the dashboard and API with 10,000 nodes in the store, SSE fan-out while the fleet
checks in, and the bus's check-in rate with the web service running vs without it (same run).

Measured, each beside its peer from the same run:
  page      — GET / (the fleet view, every row) cold (first request, takes the snapshot) and warm; Chromium's
              load event for the same page when chromium is installed.  Peer: `perceus node status` (CLI, same
              store).  Target: first full page ≤ 1 s.
  api       — GET /api/v1/nodes (every node) and a filtered /api/v1/status?nodes=n[00000-04999]: p50/p95 of
              sequential requests.  Peer: `perceus node list --json`.  Target: p95 ≤ 200 ms.
  fan-out   — 50 SSE clients (one selector process) while the agents check in: events and rows each received,
              delay from snapshot to receipt (p95), resyncs.
  check-in  — N known nodes (CurveZMQ, a key each, hello'd before the clock) check in as fast as the bus answers,
              from 4 processes, for a fixed window; rounds interleave "web stopped" and "web running with 50 SSE
              clients watching"; the median of per-round ratios.  Goal ≥ 0.95×.

Last line: web_page_s=… web_api_p95_ms=… sse_clients=… sse_p95_ms=… checkin_ratio=… nodes=… rounds=…
Usage: python -m bench.web [--smoke] [--nodes N] [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import zmq

from bench.checkin import Server, cpu_seconds, start_curve_bus
from perceus.agent.bus import CurveClient, new_keypair
from perceus.lab.bus import python_env
from perceus.master.config import Paths
from perceus.master.store import open_store
from perceus.master.store.models import ContactUpdate, NewNode
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import CheckIn, Error, Hello
from perceus.web.client import RunningWeb, start_web

SSE_CLIENTS = 50
PROCS = 4
_CLI = "import sys; from perceus.master.cli.main import main; sys.exit(main())"


def mac(i: int) -> str:
    return f"0E:00:01:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}"


def seed(paths: Paths, n: int) -> None:
    nodes = [
        NewNode(
            nodeid=mac(i),
            hostname=f"n{i:05d}",
            group=f"rack{i // 512:02d}",
            vnfs="debian12",
            ip=f"10.{i >> 16 & 0xFF}.{i >> 8 & 0xFF}.{i & 0xFF}",
            macs=(mac(i),),
            attrs={"cpu": "2× Xeon 6248", "memory": "192 GiB"},
        )
        for i in range(n)
    ]
    with open_store(paths) as store:
        store.import_nodes(nodes, update=True)
        now = time.time()
        store.record_contacts(
            [
                ContactUpdate(mac(i), "ready", f"10.0.{i >> 8 & 0xFF}.{i & 0xFF}", now - i % 300, "b", "runtime")
                for i in range(0, n, 2)
            ]
        )


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cli_seconds(paths: Paths, *args: str) -> float:
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CLI, *dirs, *args], capture_output=True, env=python_env(), check=False)
    assert out.returncode == 0, out.stderr[-500:]
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------------- page and API


def timed_get(web: RunningWeb, path: str) -> float:
    t = time.perf_counter()
    status, _, body = web.request(path, token=web.tokens.read, timeout=60)
    assert status == 200 and body, (path, status)
    return time.perf_counter() - t


def browser_load(web: RunningWeb) -> float | None:
    """Chromium: navigation start → load event of the fleet view (None without chromium/selenium)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=opts)
    try:
        d.get(f"{web.url}/login?token={web.tokens.read}&next=/openapi.json")
        d.get(web.url + "/")
        ms = d.execute_script("const t = performance.timing; return t.loadEventEnd - t.navigationStart;")
        return float(ms) / 1000
    finally:
        d.quit()


# ---------------------------------------------------------------------------------------------- SSE clients


def _sse_clients(url: str, token: str, count: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """`count` EventSource-like connections in one process; per client: events, rows, delays, resyncs."""
    u = urlsplit(url)
    sel = selectors.DefaultSelector()
    stats = []
    for i in range(count):
        s = socket.create_connection((u.hostname, u.port))
        s.sendall(
            f"GET /api/v1/events HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        st = {"events": 0, "rows": 0, "delays": [], "resyncs": 0, "buf": b""}
        stats.append(st)
        sel.register(s, selectors.EVENT_READ, i)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            st = stats[key.data]
            data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            if not data:
                sel.unregister(key.fileobj)
                continue
            st["buf"] += data
            while b"\n\n" in st["buf"]:
                block, st["buf"] = st["buf"].split(b"\n\n", 1)
                event, payload = "", b""
                for line in block.split(b"\n"):
                    if line.startswith(b"event: "):
                        event = line[7:].decode()
                    elif line.startswith(b"data: "):
                        payload = line[6:]
                if not event:
                    continue
                st["events"] += 1
                if event == "resync":
                    st["resyncs"] += 1
                elif event in ("nodes", "counts"):
                    msg = json.loads(payload)
                    st["rows"] += len(msg.get("rows", ()))
                    if event == "counts" and "t" in msg:
                        st["delays"].append(time.time() - msg["t"])
    out.put([{k: v for k, v in st.items() if k != "buf"} for st in stats])


# ---------------------------------------------------------------------------------------------- check-in load


def _agents(  # type: ignore[type-arg]
    server: Server,
    macs: list[str],
    keypairs: list[tuple[bytes, bytes]],
    seconds: float,
    ready: mp.Event,
    start: mp.Event,
    out: mp.Queue,
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, len(macs) + 64)
    socks = []
    for keypair in keypairs:  # the same key per node every round: the bus pins a node's key at its first hello
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        CurveClient(server.key, keypair)(s)
        s.connect(server.endpoint)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    for i, (s, m) in enumerate(zip(socks, macs, strict=True)):  # every node says hello once (pins its key)
        s.send(codec.encode(Hello(rid=i + 1, macs=(m,), state="ready", stage=Stage.RUNTIME, boot_id="w")))
    pending = len(socks)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for s, _ in poller.poll(1000):
            s.recv_multipart()
            pending -= 1
    frames = {
        id(s): codec.encode(CheckIn(rid=7, node=m, state="ready", boot_id="w"))
        for s, m in zip(socks, macs, strict=True)
    }
    ready.set()
    start.wait()
    for s in socks:
        s.send(frames[id(s)])
    got = errors = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for s, _ in poller.poll(100):
            reply = s.recv_multipart()
            got += 1
            if got % 8 == 0 and isinstance(codec.decode(reply[0]), Error):  # a sample: is the bus refusing?
                errors += 8
            s.send(frames[id(s)])
    out.put((got, errors))
    for s in socks:
        s.close(linger=0)
    ctx.term()


def checkin_rate(server: Server, keypairs: list[tuple[bytes, bytes]], seconds: float) -> float:
    """Check-ins answered per second (Ack, not Error: a refusing bus would look fast) from len(keypairs) nodes."""
    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    macs = [mac(i) for i in range(len(keypairs))]
    readies = [mpc.Event() for _ in range(PROCS)]
    procs = [
        mpc.Process(target=_agents, args=(server, macs[i::PROCS], keypairs[i::PROCS], seconds, readies[i], start, out))
        for i in range(PROCS)
    ]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(180)
    start.set()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    got, errors = sum(g for g, _ in results), sum(e for _, e in results)
    if errors > got / 100:
        raise RuntimeError(f"the bus refused ~{errors} of {got} check-ins (sampled): not a rate to report")
    return got / seconds


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="seconds: 500 nodes, 5 SSE clients, one short round")
    ap.add_argument("--nodes", type=int, default=0, help="nodes in the store (default 10,000; --smoke 500)")
    ap.add_argument("--rounds", type=int, default=5, help="check-in rounds with and without the web service")
    ap.add_argument("--seconds", type=float, default=0, help="check-in window per round (default 6; --smoke 2)")
    args = ap.parse_args(argv)
    nodes = args.nodes or (500 if args.smoke else 10_000)
    rounds = 1 if args.smoke else max(1, args.rounds)
    seconds = args.seconds or (2.0 if args.smoke else 6.0)
    clients = 5 if args.smoke else SSE_CLIENTS
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        pass
    work = Path(tempfile.mkdtemp(prefix="perceus-bench-web-"))
    paths = Paths(work / "etc", work / "var")
    paths.ensure()
    with paths.perceus_conf.open("a") as fh:
        fh.write("manage dnsmasq = no\n")
    seed(paths, nodes)
    print(
        f"# {nodes} nodes, {clients} SSE clients, {rounds} check-in rounds × {seconds:.0f} s, cpus {os.cpu_count()}",
        flush=True,
    )
    bus, server = start_curve_bus(paths)
    try:
        # ---- page and API (web running, bus idle)
        web = start_web(paths)
        try:
            page_cold = timed_get(web, "/")
            page_warm = [timed_get(web, "/") for _ in range(3 if args.smoke else 5)]
            page_browser = None if args.smoke else browser_load(web)
            n_api = 10 if args.smoke else 40
            api_all = [timed_get(web, "/api/v1/nodes") for _ in range(n_api)]
            api_filtered = [
                timed_get(web, f"/api/v1/status?nodes=n%5B00000-{nodes // 2 - 1:05d}%5D") for _ in range(n_api)
            ]
        finally:
            web.stop()
        cli_status = statistics.median(cli_seconds(paths, "node", "status") for _ in range(3))
        cli_list = statistics.median(cli_seconds(paths, "--json", "node", "list") for _ in range(3))
        print(
            json.dumps(
                {
                    "bench": "page",
                    "cold_s": round(page_cold, 3),
                    "warm_s": round(statistics.median(page_warm), 3),
                    "chromium_load_s": page_browser,
                    "peer_cli_status_s": round(cli_status, 3),
                }
            ),
            flush=True,
        )
        print(
            json.dumps(
                {
                    "bench": "api",
                    "all_p50_ms": round(pct(api_all, 50) * 1e3, 1),
                    "all_p95_ms": round(pct(api_all, 95) * 1e3, 1),
                    "filtered_p95_ms": round(pct(api_filtered, 95) * 1e3, 1),
                    "peer_cli_list_json_s": round(cli_list, 3),
                }
            ),
            flush=True,
        )

        # ---- check-in rate without / with the web service (+ SSE clients), interleaved
        keypairs = [new_keypair() for _ in range(nodes)]
        ratios, without, with_web, sse_stats = [], [], [], []
        shares: list[list[float]] = []  # CPU (cores) of perceus-web, the SSE clients, perceus-bus while loaded
        for r in range(rounds):  # alternate which goes first, so drift on a shared machine cancels out
            base = checkin_rate(server, keypairs, seconds) if r % 2 == 0 else 0.0
            web = start_web(paths)
            mpc = mp.get_context("fork")
            out = mpc.Queue()
            watcher = mpc.Process(target=_sse_clients, args=(web.url, web.tokens.read, clients, seconds + 25, out))
            watcher.start()
            try:
                time.sleep(1.5)  # the clients connect and the first snapshot is taken
                pids = (web.proc.pid, watcher.pid or 0, bus.proc.pid)
                cpu0, t0 = [cpu_seconds(p) for p in pids], time.perf_counter()
                loaded = checkin_rate(server, keypairs, seconds)
                wall = time.perf_counter() - t0
                shares.append([(cpu_seconds(p) - c) / wall for p, c in zip(pids, cpu0, strict=True)])
                sse_stats.extend(out.get(timeout=seconds + 200))
            finally:
                watcher.join(10)
                web.stop()
            if r % 2 == 1:
                base = checkin_rate(server, keypairs, seconds)
            ratios.append(loaded / base)
            without.append(base)
            with_web.append(loaded)
            print(
                json.dumps(
                    {
                        "web_cpu": round(shares[-1][0], 3),
                        "sse_clients_cpu": round(shares[-1][1], 3),
                        "bus_cpu": round(shares[-1][2], 3),
                        "round": r,
                        "bench": "checkin",
                        "without_web_per_s": round(base),
                        "with_web_per_s": round(loaded),
                        "ratio": round(loaded / base, 3),
                    }
                ),
                flush=True,
            )
    finally:
        bus.stop()
        shutil.rmtree(work, ignore_errors=True)

    delays = [d for st in sse_stats for d in st["delays"]]
    events = [st["events"] for st in sse_stats]
    rows = [st["rows"] for st in sse_stats]
    resyncs = sum(st["resyncs"] for st in sse_stats)
    ratio = statistics.median(ratios)
    page = page_cold
    api95 = pct(api_all, 95) * 1e3
    print()
    print(f"{'measure':<44} {'value':>12}  {'peer (same run)':<34} {'target':<14} met")
    print("-" * 118)
    table = [
        (
            "first full page GET / (cold, all rows)",
            f"{page:.3f} s",
            f"node status CLI {cli_status:.3f} s",
            "≤ 1 s",
            page <= 1.0,
        ),
        ("fleet page warm (median)", f"{statistics.median(page_warm):.3f} s", "", "", None),
        (
            "Chromium load event, fleet view",
            f"{page_browser:.3f} s" if page_browser else "-",
            "",
            "≤ 1 s",
            page_browser <= 1.0 if page_browser else None,
        ),
        ("API /api/v1/nodes p95", f"{api95:.1f} ms", f"node list --json {cli_list:.3f} s", "≤ 200 ms", api95 <= 200),
        ("API /api/v1/status?nodes=range p95", f"{pct(api_filtered, 95) * 1e3:.1f} ms", "", "", None),
        (
            f"SSE {clients} clients × {rounds} rounds: events each (min/max)",
            f"{min(events, default=0)}/{max(events, default=0)}",
            f"rows each {min(rows, default=0)}/{max(rows, default=0)}",
            "",
            None,
        ),
        ("SSE delay snapshot → client p95", f"{pct(delays, 95) * 1e3:.0f} ms", f"resyncs {resyncs}", "", None),
        (
            "bus check-ins/s with web (median ratio)",
            f"{ratio:.3f}×",
            f"without web {statistics.median(without):.0f}/s",
            "≥ 0.95×",
            ratio >= 0.95,
        ),
        (
            "CPU while loaded: web / SSE clients / bus",
            "/".join(f"{statistics.median(x[i] for x in shares):.2f}" for i in range(3)),
            "cores (median over rounds)",
            "",
            None,
        ),
    ]
    for name, value, peer, target, met in table:
        mark = "" if met is None else ("yes" if met else "NO")
        print(f"{name:<44} {value:>12}  {peer:<34} {target:<14} {mark}")
    print(
        f"web_page_s={page:.3f} web_api_p95_ms={api95:.1f} sse_clients={clients} "
        f"sse_p95_ms={pct(delays, 95) * 1e3:.0f} checkin_ratio={ratio:.3f} "
        f"checkin_with_web={statistics.median(with_web):.0f} checkin_without_web={statistics.median(without):.0f} "
        f"web_cpu={statistics.median(x[0] for x in shares):.2f} nodes={nodes} rounds={rounds}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
