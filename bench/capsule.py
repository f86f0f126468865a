"""Capsule delivery benchmark: perceus-bus (mmap + zero-copy frames, credit flow, Curve on) against nginx → curl.

Workloads (issue 5), each round runs every variant once (interleaved), ≥ 5 rounds, median of per-round ratios:
  serve1   one client pulls the whole packed capsule (~512 MiB of zstd chunks): perceus-bus → a DEALER process
           pulling chunk by chunk with credit 8 (discarding), vs nginx (sendfile) → curl -o /dev/null.
  serve16  16 such clients at once: aggregate MB/s and slowest/fastest client time.
  fetch    the node side end to end into tmpfs: `fetch_capsule` (manifest signature, credit pulls, BLAKE3
           verify, zstd decompress, write the rootfs cpio + kernel) vs `curl | zstd -d | tar x` of a tar.zst
           of the same tree.
Every client is a fresh node, as in a real fleet: its own Curve key and boot, `hello` (auto-enrolled with
`Vnfs Name = bench`), then the pulls — so no client reuses another's sequence numbers.  The bus runs its
default configuration, Curve on; the peer for that is nginx over TLS (curl -k, TLS 1.3), and plain-HTTP nginx
is shown beside it.  `--security none` measures the plaintext bus against plain nginx.
Servers start once; the page cache is warmed before the first round.  Built capsules are cached in
/var/tmp/perceus-bench/ between runs.

The last line is exactly:
  serve1_vs_nginx=<r> serve16_vs_nginx=<r> fetch_vs_curl=<r> capsule_mib=<n> clients=<n> security=<curve|none>
  (the ratios against the like-for-like peer: nginx over TLS with Curve, plain nginx without)
Usage: python -m bench.capsule [--quick | --smoke] [--rounds N] [--size-mib N] [--clients N] [--security S]
"""

from __future__ import annotations

import argparse
import itertools
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
from perceus.agent import security as node_security
from perceus.agent.bus import BusClient, CurveClient
from perceus.agent.capsule_fetch import fetch_capsule
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.protocol import codec
from perceus.protocol.capsule import CapsuleManifest
from perceus.protocol.enums import Phase, Stage
from perceus.protocol.messages import Chunk, GetChunks, Hello, Report, Wait

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
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.3;
        root {root};
    }}
}}
"""


_RUN = os.urandom(2)  # node MACs are fresh per run (the capsule's database is cached between runs)
_NODES = itertools.count(1)


def fresh_node() -> str:
    """A MAC no client used before: every pull is a new node's boot."""
    i = next(_NODES)
    return f"52:54:{_RUN[0]:02X}:{_RUN[1]:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}"


def boot(endpoint: str, node: str, key: bytes | None) -> tuple[BusClient, str]:
    """A node's BusClient (its own Curve key with `key`) after its stage-one `hello`, and its boot id."""
    client = BusClient([endpoint], curve=CurveClient(key) if key else None)
    boot_id = os.urandom(16).hex()
    client.request(Hello(macs=(node,), state="init", stage=Stage.STAGE1, boot_id=boot_id))
    return client, boot_id


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
    base = CACHE / f"capsule-{size_mib}-signed"
    paths = Paths(base / "etc", base / "var")
    docroot = base / "www"
    done = base / "built"
    if not done.exists():
        shutil.rmtree(base, ignore_errors=True)
        paths.ensure()
        master_keys.ensure(paths)  # before packing: the manifest is signed with the master's key
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
    # Nodes enroll at hello (open policy) with this capsule: perceus-bus serves capsules to enrolled nodes only.
    paths.defaults_conf.write_text("Node Name = b#####\nGroup Name = bench\nVnfs Name = bench\n")
    master_keys.ensure(paths)
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


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    http: str  # base URLs
    https: str
    run_dir: Path

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def start_nginx(docroot: Path, workers: str) -> Nginx:
    """nginx serving `docroot` over plain HTTP and over TLS 1.3 (a throwaway self-signed certificate)."""
    run_dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(run_dir / "key.pem"),
                    "-out", str(run_dir / "cert.pem")], check=True, capture_output=True)  # fmt: skip
    port, tls_port = free_port(), free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, dir=run_dir, port=port, tls_port=tls_port, root=docroot))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run_dir)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            for p in (port, tls_port):
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
            return Nginx(proc, f"http://127.0.0.1:{port}", f"https://127.0.0.1:{tls_port}", run_dir)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


# ---------------------------------------------------------------------------------------------- clients


def pull(client: BusClient, node: str, boot_id: str, hashes: list[str], credit: int) -> int:
    """A serving-only client: every chunk with `credit` requests in flight, payload discarded (as curl -o /dev/null).

    A `wait` (no transfer slot yet: boot-storm pacing, on by default) is honoured as the agent does: that chunk is
    asked again after `retry_after`.  At the end the node reports its capsule phase done, which frees its slot.
    """
    sock = client.socket
    todo = list(reversed(hashes))
    asked: dict[int, str] = {}
    hold = 0.0
    got = 0
    while todo or asked:
        while todo and len(asked) < credit and time.monotonic() >= hold:
            h = todo.pop()
            asked[client.send(GetChunks(node=node, hashes=(h,)))] = h
        if not sock.poll(max(1, int((hold - time.monotonic()) * 1000)) if not asked else 30_000):
            if asked:
                raise RuntimeError("no reply within 30 s")
            continue
        frames = sock.recv_multipart(copy=False)
        reply = codec.decode(frames[0].buffer)
        h = asked.pop(reply.rid)
        if isinstance(reply, Wait):
            todo.append(h)
            hold = time.monotonic() + reply.retry_after
            continue
        if not isinstance(reply, Chunk) or len(frames) != 2:
            raise RuntimeError(f"unexpected reply {reply}")
        got += len(frames[1].buffer)
    client.request(Report(node=node, boot_id=boot_id, phase=Phase.CAPSULE, at=time.time(), ok=True, done=True))
    client.close()
    return got


def client_main(argv: list[str]) -> None:
    endpoint, key_hex, node, hashes_file, credit = argv
    client, boot_id = boot(endpoint, node, bytes.fromhex(key_hex) if key_hex != "-" else None)
    hashes = Path(hashes_file).read_text().split()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    got = pull(client, node, boot_id, hashes, int(credit))
    print(json.dumps({"start": start, "end": time.time(), "bytes": got}), flush=True)


@dataclass
class Result:
    mbps: float  # aggregate MB/s
    spread: float  # slowest / fastest client time


def run_perceus(endpoint: str, key: bytes | None, hashes_file: Path, clients: int, credit: int = 8) -> Result:
    key_arg = key.hex() if key else "-"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.capsule",
                "--client",
                endpoint,
                key_arg,
                fresh_node(),
                str(hashes_file),
                str(credit),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(clients)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [json.loads(p.communicate()[0]) for p in procs]
    return _result([(o["start"], o["end"], o["bytes"]) for o in outs])


def run_curl(base: str, clients: int) -> Result:
    url = f"{base}/capsule.bin"
    start = time.time()
    procs = [subprocess.Popen(["curl", "-ksS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
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


def run_fetch(endpoint: str, key: bytes | None, cap: Capsule) -> float:
    dest = Path(tempfile.mkdtemp(prefix="bench-fetch-", dir=SHM))
    node = fresh_node()
    client, boot_id = boot(endpoint, node, key)
    try:
        t = time.monotonic()
        fetch_capsule(client, node, cap.manifest.hash, dest, credit=8)
        secs = time.monotonic() - t
        client.request(Report(node=node, boot_id=boot_id, phase=Phase.CAPSULE, at=time.time(), ok=True, done=True))
    finally:
        client.close()
        shutil.rmtree(dest)
    return cap.manifest.rootfs.size / secs / 1e6


def run_curl_pipeline(base: str, cap: Capsule) -> float:
    dest = Path(tempfile.mkdtemp(prefix="bench-tar-", dir=SHM))
    try:
        t = time.monotonic()
        subprocess.run(f"curl -ksS {base}/rootfs.tar.zst | zstd -d -q | tar -x -C {dest}",
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
    ap = argparse.ArgumentParser(prog="python -m bench.capsule", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one short round on a 64 MiB capsule")
    ap.add_argument("--smoke", action="store_true", help="seconds: one round, 8 MiB capsule, 2 clients")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--nginx-workers", default="auto")
    ap.add_argument("--security", choices=("curve", "none"), default="curve", help="the bus's (default: curve)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.size_mib = 1, 64
    if args.smoke:
        args.rounds, args.size_mib, args.clients = 1, 8, 2
    logsetup.configure(level="warning")
    for tool in ("nginx", "curl", "zstd", "tar", "openssl"):
        if shutil.which(tool) is None:
            print(f"bench.capsule: error: {tool} is not installed", file=sys.stderr)
            return 1
    cap = build(args.size_mib)
    packed = cap.manifest.packed_size
    hashes_file = cap.paths.run / "hashes"
    hashes_file.write_text("\n".join(r.hash for r in cap.manifest.all_chunks()))
    warm(cap)
    keys = master_keys.load(cap.paths)
    assert keys is not None
    key = keys.bus_public if args.security == "curve" else None
    node_security.use(node_security.Trust(keys.bus_public, keys.sign_public, "bench"))  # fetch checks the signature
    bus: RunningBus = start_local_bus(cap.paths, security=args.security)
    nginx = start_nginx(cap.docroot, args.nginx_workers)
    names = ("p1", "n1", "t1", "p16", "n16", "t16", "pf", "cf", "tf", "p16s", "n16s")
    rows: dict[str, list[float]] = {k: [] for k in names}
    try:
        # one untimed pass of each, so connection set-up and first mappings are not in round 1
        run_perceus(bus.endpoint, key, hashes_file, 1)
        run_curl(nginx.http, 1)
        run_curl(nginx.https, 1)
        for r in range(args.rounds):
            p1, n1, t1 = (run_perceus(bus.endpoint, key, hashes_file, 1), run_curl(nginx.http, 1),
                          run_curl(nginx.https, 1))  # fmt: skip
            p16 = run_perceus(bus.endpoint, key, hashes_file, args.clients)
            n16, t16 = run_curl(nginx.http, args.clients), run_curl(nginx.https, args.clients)
            pf, cf, tf = (run_fetch(bus.endpoint, key, cap), run_curl_pipeline(nginx.http, cap),
                          run_curl_pipeline(nginx.https, cap))  # fmt: skip
            for k, value in (("p1", p1.mbps), ("n1", n1.mbps), ("t1", t1.mbps), ("p16", p16.mbps),
                             ("n16", n16.mbps), ("t16", t16.mbps), ("pf", pf), ("cf", cf), ("tf", tf),
                             ("p16s", p16.spread), ("n16s", n16.spread)):  # fmt: skip
                rows[k].append(value)
            print(json.dumps({"bench": "capsule", "round": r, "serve1": [p1.mbps, n1.mbps, t1.mbps],
                              "serve16": [p16.mbps, n16.mbps, t16.mbps], "spread16": [p16.spread, n16.spread],
                              "fetch": [pf, cf, tf]}), flush=True)  # fmt: skip
    finally:
        bus.stop()
        nginx.stop()
        node_security.use(None)
    print()
    print(f"Capsule: {cap.manifest.rootfs.size / 2**20:.0f} MiB rootfs → {packed / 2**20:.0f} MiB packed in "
          f"{len(cap.manifest.all_chunks())} zstd chunks; {args.rounds} interleaved round(s); bus security "
          f"{args.security}; Python {platform.python_version()}, pyzmq {zmq.__version__}/libzmq "
          f"{zmq.zmq_version()}, nginx {args.nginx_workers} worker(s) sendfile on, {os.cpu_count()} CPUs")  # fmt: skip
    print()
    print("| bench    | ours MB/s | peer MB/s | ratio median [min–max] | note                       |")
    print("|----------|-----------|-----------|------------------------|----------------------------|")
    like = "t" if key else "n"
    label = "nginx TLS" if key else "nginx"
    s1, r1 = summary("serve1", rows["p1"], rows[like + "1"], f"peer: {label} → curl")
    s16, r16 = summary(
        f"serve{args.clients}",
        rows["p16"],
        rows[like + "16"],
        f"slow/fast {statistics.median(rows['p16s']):.2f} vs {statistics.median(rows['n16s']):.2f}",
    )
    sf, rf = summary("fetch", rows["pf"], rows[like + "f"], f"rootfs MB/s; curl|zstd|tar ({label})")
    lines = [s1, s16, sf]
    if key:  # the plaintext peer beside it, for what the encryption costs nginx
        lines += [summary("serve1", rows["p1"], rows["n1"], "peer: plain nginx")[0],
                  summary(f"serve{args.clients}", rows["p16"], rows["n16"], "peer: plain nginx")[0],
                  summary("fetch", rows["pf"], rows["cf"], "peer: plain nginx")[0]]  # fmt: skip
    for line in lines:
        print(line)
    print()
    print(f"serve1_vs_nginx={r1:.2f} serve16_vs_nginx={r16:.2f} fetch_vs_curl={rf:.2f} "
          f"capsule_mib={args.size_mib} clients={args.clients} security={args.security}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
