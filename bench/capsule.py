"""Capsule delivery benchmark: perceus-bus (mmap + zero-copy frames, credit flow) against nginx (sendfile) → curl.

Workloads (issue 5), each round runs every variant once (interleaved), ≥ 5 rounds, median of per-round ratios:
  serve1   one client pulls the whole packed capsule (~512 MiB of zstd chunks): perceus-bus → a DEALER process
           pulling chunk by chunk with credit 8 (discarding), vs nginx (sendfile on) → curl -o /dev/null.
  serve16  16 such clients at once: aggregate MB/s and slowest/fastest client time.
  fetch    the node side end to end into tmpfs: `fetch_capsule` (manifest, credit pulls, BLAKE3 verify, zstd
           decompress, write the rootfs cpio + kernel) vs `curl | zstd -d | tar x` of a tar.zst of the same tree.
Servers start once; the page cache is warmed before the first round.  Built capsules are cached in
/var/tmp/perceus-bench/ between runs.

The last line is exactly: serve1_vs_nginx=<r> serve16_vs_nginx=<r> fetch_vs_curl=<r>
Usage: bench/capsule.py [--quick] [--rounds N] [--size-mib N] [--clients N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from bench import REPO
from perceus import logsetup
from perceus.agent.bus import BusClient
from perceus.agent.capsule_fetch import fetch_capsule
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.capsule import CapsuleManifest
from perceus.protocol.messages import Chunk, GetChunks

CACHE = Path("/var/tmp/perceus-bench")
SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
RANDOM_SHARE = 0.6  # of each file: the rest is text-like and compresses well (packed ≈ 0.6 × raw)
NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def node_mac(i: int) -> str:
    return f"52:54:00:BE:00:{i:02X}"


# ---------------------------------------------------------------------------------------------- the capsule


def make_tree(root: Path, raw_bytes: int, seed: int = 7) -> None:
    """A rootfs-like tree: many small files, some large, 60 % incompressible bytes."""
    rng = random.Random(seed)
    text = b"".join(rng.choice([b"lib", b"usr", b"share", b"the ", b"config", b"\n", b"0123", b"doc "])
                    for _ in range(1 << 16))  # fmt: skip
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-bench").write_bytes(os.urandom(8 << 20))
    total, n = 8 << 20, 0
    while total < raw_bytes:
        size = int(min(8 << 20, max(512, rng.lognormvariate(10.5, 1.6))))
        d = root / f"usr/lib/d{n // 200:03d}"
        if n % 200 == 0:
            d.mkdir(parents=True)
        rnd = int(size * RANDOM_SHARE)
        body = os.urandom(rnd) + (text * (1 + (size - rnd) // len(text)))[: size - rnd]
        (d / f"f{n:05d}.so").write_bytes(body)
        total += size
        n += 1


@dataclass
class Capsule:
    paths: Paths
    manifest: CapsuleManifest
    docroot: Path  # capsule.bin (the packed chunks, concatenated) and rootfs.tar.zst for the peers


def build(size_mib: int) -> Capsule:
    base = CACHE / f"capsule-{size_mib}"
    paths = Paths(base / "etc", base / "var")
    docroot = base / "www"
    done = base / "built"
    if not done.exists():
        shutil.rmtree(base, ignore_errors=True)
        paths.ensure()
        chroot = base / "chroot"
        print(f"# building a ~{size_mib} MiB capsule in {base} (cached for later runs)", flush=True)
        make_tree(chroot, int(size_mib * 2**20 / RANDOM_SHARE))
        import_capsule(paths, chroot, name="bench")
        shutil.rmtree(chroot)
        docroot.mkdir()
        store = Store(paths)
        m = current(store.existing("bench"))
        assert m is not None
        with open(docroot / "capsule.bin", "wb") as out:
            for ref in m.all_chunks():
                out.write(store.chunk_path(ref.hash).read_bytes())
        rootfs = paths.vnfs / "bench/rootfs"
        subprocess.run(f"tar -C {rootfs} -cf - . | zstd -q -3 -T0 -o {docroot / 'rootfs.tar.zst'}", shell=True,
                       check=True)  # fmt: skip
        done.touch()
    with SQLiteStore(paths.database) as db:  # perceus-bus serves capsules to enrolled nodes only
        for i in range(64):
            if db.get(node_mac(i)) is None:
                db.add(NewNode(nodeid=node_mac(i), hostname=f"b{i:03d}", vnfs="bench"))
    m = current(Store(paths).existing("bench"))
    assert m is not None
    return Capsule(paths, m, docroot)


def warm(cap: Capsule) -> None:
    store = Store(cap.paths)
    for ref in cap.manifest.all_chunks():
        store.chunk_path(ref.hash).read_bytes()
    for p in cap.docroot.iterdir():
        with open(p, "rb") as fh:
            while fh.read(8 << 20):
                pass


# ---------------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(docroot: Path, workers: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    run_dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, dir=run_dir, port=port, root=docroot))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run_dir)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, run_dir
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


# ---------------------------------------------------------------------------------------------- clients


def pull(endpoint: str, node: str, hashes: list[str], credit: int) -> int:
    """A serving-only client: every chunk with `credit` requests in flight, payload discarded (as curl -o /dev/null)."""
    client = BusClient([endpoint])
    sock = client.socket
    todo = list(reversed(hashes))
    inflight = 0
    got = 0
    while todo or inflight:
        while todo and inflight < credit:
            client.send(GetChunks(node=node, hashes=(todo.pop(),)))
            inflight += 1
        frames = sock.recv_multipart(copy=False)
        reply = codec.decode(frames[0].buffer)
        if not isinstance(reply, Chunk) or len(frames) != 2:
            raise RuntimeError(f"unexpected reply {reply}")
        got += len(frames[1].buffer)
        inflight -= 1
    client.close()
    return got


def client_main(argv: list[str]) -> None:
    endpoint, node, hashes_file, credit = argv
    hashes = Path(hashes_file).read_text().split()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    got = pull(endpoint, node, hashes, int(credit))
    print(json.dumps({"start": start, "end": time.time(), "bytes": got}), flush=True)


@dataclass
class Result:
    mbps: float  # aggregate MB/s
    spread: float  # slowest / fastest client time


def run_perceus(endpoint: str, hashes_file: Path, clients: int, credit: int = 8) -> Result:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.capsule", "--client", endpoint, node_mac(i), str(hashes_file), str(credit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(clients)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [json.loads(p.communicate()[0]) for p in procs]
    return _result([(o["start"], o["end"], o["bytes"]) for o in outs])


def run_curl(port: int, clients: int) -> Result:
    url = f"http://127.0.0.1:{port}/capsule.bin"
    start = time.time()
    procs = [subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                              stdout=subprocess.PIPE, text=True) for _ in range(clients)]  # fmt: skip
    rows = []
    for p in procs:
        size, secs = p.communicate()[0].split()
        rows.append((start, start + float(secs), int(float(size))))
    return _result(rows)


def _result(rows: list[tuple[float, float, int]]) -> Result:
    wall = max(e for _, e, _ in rows) - min(s for s, _, _ in rows)
    times = [e - s for s, e, _ in rows]
    return Result(sum(b for _, _, b in rows) / wall / 1e6, max(times) / min(times))


def run_fetch(endpoint: str, cap: Capsule) -> float:
    dest = Path(tempfile.mkdtemp(prefix="bench-fetch-", dir=SHM))
    client = BusClient([endpoint])
    try:
        t = time.monotonic()
        fetch_capsule(client, node_mac(63), cap.manifest.hash, dest, credit=8)
        secs = time.monotonic() - t
    finally:
        client.close()
        shutil.rmtree(dest)
    return cap.manifest.rootfs.size / secs / 1e6


def run_curl_pipeline(port: int, cap: Capsule) -> float:
    dest = Path(tempfile.mkdtemp(prefix="bench-tar-", dir=SHM))
    try:
        t = time.monotonic()
        subprocess.run(f"curl -sS http://127.0.0.1:{port}/rootfs.tar.zst | zstd -d -q | tar -x -C {dest}",
                       shell=True, check=True)  # fmt: skip
        secs = time.monotonic() - t
    finally:
        shutil.rmtree(dest)
    return cap.manifest.rootfs.size / secs / 1e6


# ---------------------------------------------------------------------------------------------- main


def summary(name: str, ours: list[float], peer: list[float], extra: str = "") -> tuple[str, float]:
    ratios = [a / b for a, b in zip(ours, peer, strict=True)]
    med = statistics.median(ratios)
    spread = f"{med:5.2f} [{min(ratios):.2f}–{max(ratios):.2f}]"
    row = (
        f"| {name:<8} | {statistics.median(ours):9.0f} | {statistics.median(peer):9.0f} | {spread:<22} | {extra:<26} |"
    )
    return row, med


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one short round on a 64 MiB capsule")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--nginx-workers", default="auto")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.size_mib = 1, 64
    logsetup.configure(level="warning")
    for tool in ("nginx", "curl", "zstd", "tar"):
        if shutil.which(tool) is None:
            print(f"bench/capsule.py: error: {tool} is not installed", file=sys.stderr)
            return 1
    cap = build(args.size_mib)
    packed = cap.manifest.packed_size
    hashes_file = cap.paths.run / "hashes"
    hashes_file.write_text("\n".join(r.hash for r in cap.manifest.all_chunks()))
    warm(cap)
    bus: RunningBus = start_local_bus(cap.paths)
    nginx, port, nginx_dir = start_nginx(cap.docroot, args.nginx_workers)
    rows: dict[str, list[float]] = {k: [] for k in ("p1", "n1", "p16", "n16", "pf", "cf", "p16s", "n16s")}
    try:
        # one untimed pass of each, so connection set-up and first mappings are not in round 1
        run_perceus(bus.endpoint, hashes_file, 1)
        run_curl(port, 1)
        for r in range(args.rounds):
            p1, n1 = run_perceus(bus.endpoint, hashes_file, 1), run_curl(port, 1)
            p16, n16 = run_perceus(bus.endpoint, hashes_file, args.clients), run_curl(port, args.clients)
            pf, cf = run_fetch(bus.endpoint, cap), run_curl_pipeline(port, cap)
            for key, value in (("p1", p1.mbps), ("n1", n1.mbps), ("p16", p16.mbps), ("n16", n16.mbps),
                               ("pf", pf), ("cf", cf), ("p16s", p16.spread), ("n16s", n16.spread)):  # fmt: skip
                rows[key].append(value)
            print(json.dumps({"bench": "capsule", "round": r, "serve1": [p1.mbps, n1.mbps],
                              "serve16": [p16.mbps, n16.mbps], "spread16": [p16.spread, n16.spread],
                              "fetch": [pf, cf]}), flush=True)  # fmt: skip
    finally:
        bus.stop()
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(nginx_dir, ignore_errors=True)
    print()
    print(f"Capsule: {cap.manifest.rootfs.size / 2**20:.0f} MiB rootfs → {packed / 2**20:.0f} MiB packed in "
          f"{len(cap.manifest.all_chunks())} zstd chunks; {args.rounds} interleaved round(s); "
          f"Python {platform.python_version()}, pyzmq {zmq.__version__}/libzmq {zmq.zmq_version()}, "
          f"nginx {args.nginx_workers} worker(s) sendfile on, {os.cpu_count()} CPUs")  # fmt: skip
    print()
    print("| bench    | ours MB/s | peer MB/s | ratio median [min–max] | note                       |")
    print("|----------|-----------|-----------|------------------------|----------------------------|")
    s1, r1 = summary("serve1", rows["p1"], rows["n1"], "peer: nginx → curl")
    s16, r16 = summary(
        f"serve{args.clients}",
        rows["p16"],
        rows["n16"],
        f"slow/fast {statistics.median(rows['p16s']):.2f} vs {statistics.median(rows['n16s']):.2f}",
    )
    sf, rf = summary("fetch", rows["pf"], rows["cf"], "rootfs MB/s; curl|zstd|tar")
    for line in (s1, s16, sf):
        print(line)
    print()
    print(f"serve1_vs_nginx={r1:.2f} serve16_vs_nginx={r16:.2f} fetch_vs_curl={rf:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
