"""The capsule swarm under attack (issue 21): a real perceus-bus (Curve, signed capsules) on 127.0.0.1 and real
swarm peers — each a real stage-one capsule fetch in its own process (swarm_peer.py) that then serves what it
verified over ZeroMQ/Curve.  The attacker is an enrolled node of the same cluster, or any host that got hold of
what one of them was sent.

Before this work: a voucher worked from any Curve key, a node reassigned to another capsule stayed a source, one
`bad` report excluded an honest peer for good, a swarm member fetched from the master around pacing, and a peer
answered a flood of requests as fast as they came."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
import zmq
from tests.integration.security.conftest import cli, master_pub
from tests.integration.security.hostile import audit_has, refused

from perceus.agent.bus import BusClient, CurveClient, PeerLink, new_keypair, poll_sockets
from perceus.errors import ProtocolError
from perceus.lab.bus import RunningBus, python_env
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.capsule.swarm_bus import read_state
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.capsule import CapsuleManifest, digest
from perceus.protocol.enums import ErrorCode, Stage
from perceus.protocol.messages import Chunk, Error, GetChunks, GetSources, Hello, Message, PeerGet, Sources, SwarmPeer
from perceus.protocol.messages import Wait as WaitMsg

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _logging_back() -> Iterator[None]:
    yield
    structlog.reset_defaults()  # the CLI calls here point logging at a captured stream pytest then closes


def mac(i: int) -> str:
    return f"52:54:00:21:01:{i:02x}"


A, B, C, D, E, F = (mac(i) for i in range(1, 7))


def _capsules(paths: Paths, tmp_path: Path, nodes: dict[str, tuple[str, str]]) -> CapsuleManifest:
    """Capsule `deb` (8 chunks) and `other`; `nodes`: MAC → (vnfs, rack)."""
    rng = random.Random(21)
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(500_000))
    (root / "usr").mkdir()
    for i in range(6):
        (root / f"usr/blob{i}").write_bytes(rng.randbytes(1_500_000))
    import_capsule(paths, root, name="deb")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("other\n")
    import_capsule(paths, root, name="other")
    with SQLiteStore(paths.database) as store:
        for i, (node, (vnfs, rack)) in enumerate(nodes.items()):
            store.add(NewNode(nodeid=node, hostname=f"n{i:04d}", vnfs=vnfs, attrs={"rack": rack} if rack else {}))
    m = current(Store(paths).existing("deb"))
    assert m is not None and len(m.all_chunks()) >= 4
    return m


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    """A swarm peer process: its MAC, Curve keypair, port and what it said."""

    mac: str
    public: bytes
    port: int
    proc: subprocess.Popen[str]
    fetched: dict[str, object]
    stats: dict[str, int] | None = None


@contextmanager
def peer(bus: RunningBus, tmp_path: Path, node: str, *, corrupt: bool = False, port: int = 0,
         keypair: tuple[bytes, bytes] | None = None) -> Iterator[Peer]:  # fmt: skip
    """Run swarm_peer.py for `node` (its own keypair) until its fetch is done; stop it on exit (stats kept)."""
    loaded = master_keys.load(bus.paths)
    assert loaded is not None
    public, secret = keypair or new_keypair()
    port = port or _free_port()
    cfg = {"endpoint": bus.endpoint, "master_key": loaded.bus_public.hex(), "sign_key": loaded.sign_public.hex(),
           "public": public.hex(), "secret": secret.hex(), "mac": node, "boot": node.replace(":", "") * 2,
           "dest": str(tmp_path / f"peer-{node.replace(':', '')}"), "port": port, "corrupt": corrupt}  # fmt: skip
    err = (tmp_path / f"peer-{node.replace(':', '')}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.security.swarm_peer", json.dumps(cfg)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO,
                            env={**python_env(), "PYTHONPATH": f"{REPO}:{python_env()['PYTHONPATH']}"})  # fmt: skip
    got = Peer(node, public, port, proc, {})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the fetch has its own timeouts; a dead peer closes stdout
        assert line, f"peer {node} died: {Path(err.name).read_text()[-3000:]}"
        got.fetched = json.loads(line)
        yield got
    finally:
        if proc.poll() is None and proc.stdin is not None:
            proc.stdin.close()
            assert proc.stdout is not None
            line = proc.stdout.readline()
            got.stats = json.loads(line) if line else None
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        err.close()


def node(bus: RunningBus, mac_: str) -> tuple[BusClient, CurveClient]:
    """An enrolled node's stage-one session (its own Curve key, bound by its hello)."""
    key = CurveClient(master_pub(bus.paths))
    c = BusClient([bus.endpoint], curve=key)
    hello = Hello(macs=(mac_,), state="init", stage=Stage.STAGE1, boot_id=mac_.replace(":", "") * 2)
    c.request(hello)
    return c, key


def token_of(s: Sources) -> bytes:
    return s.token + f"{s.issued:.3f}".encode()


def ask_peer(p: SwarmPeer, key: CurveClient, msg: PeerGet, *, source: str = "") -> tuple[Message | None, list[bytes]]:
    """One request to a peer's server with `key` as this connection's Curve key (from address `source`)."""
    endpoint = p.endpoint if not source else p.endpoint.replace("tcp://", f"tcp://{source}:0;")
    link = PeerLink(endpoint, curve=key.toward(bytes.fromhex(p.key)))
    try:
        link.send(msg)
        if not poll_sockets([link.socket], 10.0):
            return None, []
        frames = link.socket.recv_multipart()
        return codec.decode(frames[0]), frames[1:]
    finally:
        link.close()


def sources(c: BusClient, node_: str, m: CapsuleManifest, **fields: object) -> Sources:
    got = c.request(GetSources(node=node_, manifest=m.hash, **fields))  # type: ignore[arg-type]
    assert isinstance(got, Sources), got
    return got


def log_count(bus: RunningBus, event: str) -> int:
    """Lines of the bus's log with this event."""
    return sum(1 for line in bus.log.read_text(errors="replace").splitlines() if f"event={event}" in line.split())


def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------- (1) vouchers


def test_a_voucher_serves_only_the_key_it_names_and_only_assigned_nodes_take_part(
    secure_bus: Callable[..., RunningBus], paths: Paths, tmp_path: Path
) -> None:
    bus = secure_bus("open")
    m = _capsules(paths, tmp_path, {A: ("deb", "r1"), B: ("deb", "r1"), E: ("deb", "r1"), C: ("other", "")})
    h0 = m.all_chunks()[0].hash
    with peer(bus, tmp_path, A) as a:
        assert a.fetched["event"] == "fetched"
        b, b_key = node(bus, B)
        e, e_key = node(bus, E)
        c, _ = node(bus, C)
        try:
            got = sources(b, B, m, want=(0,), credit=1)
            assert got.assign == ((0, 0),) and got.peers[0].node == A and got.token
            vouched = PeerGet(rid=1, node=B, manifest=m.hash, hash=h0, token=token_of(got))
            reply, payload = ask_peer(got.peers[0], b_key, vouched)
            assert isinstance(reply, Chunk) and digest(payload[0]) == h0  # B, with the key it was vouched for
            # E (enrolled, same capsule, same rack) — or any host — replays B's voucher from its own key
            stolen = PeerGet(rid=2, node=B, manifest=m.hash, hash=h0, token=token_of(got))
            reply, payload = ask_peer(got.peers[0], e_key, stolen)
            assert isinstance(reply, Error) and not payload and "for this key" in reply.message
            stranger = CurveClient(master_pub(paths))
            reply, payload = ask_peer(got.peers[0], stranger, stolen, source="127.0.0.9")
            assert isinstance(reply, Error) and not payload
            # C is assigned another capsule: it gets neither sources nor a voucher for this one
            assert refused(c, GetSources(node=C, manifest=m.hash, want=(0,), credit=1), "NOT_FOUND")
            # A is moved to the other capsule: within the grant's lifetime (5 s) it is listed no more
            assert cli(paths, "node", "set", "vnfs", "other", "n0000") == 0

            def master_sends_it() -> bool:
                s = sources(b, B, m, want=(1,), credit=1)
                return A not in {p.node for p in s.peers} and s.assign == ((1, -1),)

            assert wait_for(master_sends_it, 12.0), "a node assigned another capsule stayed a source"
            # E claims chunk 2 and becomes its only source; once E is revoked it is listed no more, at once
            sources(e, E, m, have=(2,), port=_free_port())
            assert [p.node for p in sources(b, B, m, want=(2,), credit=1).peers] == [E]
            assert cli(paths, "node", "revoke", "n0002") == 0

            def not_e() -> bool:
                return sources(b, B, m, want=(2,), credit=1).assign == ((2, -1),)

            assert wait_for(not_e, 3.0), "a revoked node stayed a source"
        finally:
            for x in (b, e, c):
                x.close()
    assert a.stats is not None and a.stats["served"] == 1 and a.stats["refused"] >= 2


# ---------------------------------------------------------------------------------------------- (2) reports


def test_reports_are_checked_by_the_master_before_a_peer_is_excluded(
    secure_bus: Callable[..., RunningBus], paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bus = secure_bus("open")
    racks = {A: ("deb", "r1"), C: ("deb", "r2"), B: ("deb", "r1"), D: ("deb", "r2"), E: ("deb", "r3")}
    m = _capsules(paths, tmp_path, racks)
    n = len(m.all_chunks())
    with peer(bus, tmp_path, A), peer(bus, tmp_path, C, corrupt=True):
        b, _ = node(bus, B)
        d, d_key = node(bus, D)
        e, _ = node(bus, E)
        try:
            # E was never sent to A: its reports about A are not about anything the master knows
            sources(e, E, m, bad=(A,), dead=(A,))
            assert sources(b, B, m, want=(0,), credit=1).peers[0].node == A  # A still serves (same rack as B)
            # B reports A bad again and again: each time the master fetches that chunk from A, it verifies,
            # B gets a strike; after three, B is not listened to
            for round_ in range(1, 4):
                got = sources(b, B, m, want=(round_,), credit=1)  # (also applies the previous round's verdict)
                assert [p.node for p in got.peers] == [A], got
                sources(b, B, m, bad=(A,))
                assert wait_for(lambda r=round_: log_count(bus, "swarm_report_checked") >= r)  # type: ignore[misc]
            sources(b, B, m, want=(4,), credit=1)
            assert audit_has(paths, "swarm_reporter_ignored")
            assert log_count(bus, "swarm_false_report") == 3
            sources(b, B, m, bad=(A,), dead=(A,))  # not listened to: no fourth check, A is not even skipped
            time.sleep(0.5)
            assert log_count(bus, "swarm_report_checked") == 3
            assert [p.node for p in sources(b, B, m, want=(5,), credit=1).peers] == [A]
            # D (rack r2) is sent to C, whose kept chunks are corrupt: D's report is checked and C is excluded
            got = sources(d, D, m, want=(0,), credit=1)
            assert [p.node for p in got.peers] == [C]
            h0 = m.all_chunks()[0].hash
            reply, payload = ask_peer(got.peers[0], d_key, PeerGet(rid=1, node=D, manifest=m.hash, hash=h0,
                                                                   token=token_of(got)))  # fmt: skip
            assert isinstance(reply, Chunk) and digest(payload[0]) != h0
            sources(d, D, m, bad=(C,))
            assert wait_for(lambda: (sources(d, D, m), _excluded(paths, m))[1] == [C])  # each call applies verdicts
            # every source is verified: D completes from A and the master; C is nobody's source any more
            rest = sources(d, D, m, want=tuple(range(n)), credit=8)
            assert C not in {p.node for p in rest.peers}
        finally:
            for x in (b, d, e):
                x.close()
    assert _excluded(paths, m) == [C]
    assert cli(paths, "node", "status") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "SWARM-EXCLUDED" in line]
    assert len(lines) == 1 and "n0001" in lines[0]  # C only; A, falsely accused four times, is not


def _excluded(paths: Paths, m: CapsuleManifest) -> list[str]:
    return list(read_state(paths).get("capsules", {}).get(m.hash, {}).get("excluded", []))


# ---------------------------------------------------------------------------------------------- (3) pacing


def test_swarm_members_go_through_pacing_at_the_master(
    secure_bus: Callable[..., RunningBus], paths: Paths, tmp_path: Path
) -> None:
    bus = secure_bus("open", capsule_slots="2")
    m = _capsules(paths, tmp_path, {A: ("deb", ""), B: ("deb", ""), C: ("deb", ""), D: ("deb", "")})
    chunks = [c.hash for c in m.all_chunks()]
    s1, _ = node(bus, A)
    s2, _ = node(bus, B)
    member, _ = node(bus, C)
    try:
        assert isinstance(s1.request(GetChunks(node=A, hashes=(chunks[0],))), Chunk)  # a star node: slot 1 of 2
        # The member asks for 4 chunks; the uplink has room for one more transfer: one master assignment
        got = sources(member, C, m, want=tuple(range(len(chunks))), credit=4)
        mine = [i for i, s in got.assign if s == -1]
        assert len(mine) == 1, got
        assert isinstance(s2.request(GetChunks(node=B, hashes=(chunks[1],))), Chunk)  # slot 2 of 2
        # The assigned chunk comes at once (its ticket); anything else — the same chunk again, or another one
        # the swarm did not assign — waits for a slot like a star node's request
        assert isinstance(member.request(GetChunks(node=C, hashes=(chunks[mine[0]],))), Chunk)
        other = next(h for i, h in enumerate(chunks) if i != mine[0])
        for h in (chunks[mine[0]], other):
            rid = member.send(GetChunks(node=C, hashes=(h,)))
            reply, _ = member.receive(rid, 10)
            assert isinstance(reply, WaitMsg), reply
        # and while the uplink's slots are taken, the swarm assigns nobody a master send
        assert not [s for _, s in sources(member, C, m, want=tuple(range(len(chunks))), credit=4).assign if s == -1]
    finally:
        for x in (s1, s2, member):
            x.close()


# ---------------------------------------------------------------------------------------------- (4) peer limits


@dataclass
class Flood:
    """Hostile clients hammering one peer server: `conns` connections from one address, each its own key."""

    endpoint: str
    server_key: bytes
    frames: list[bytes]
    conns: int = 8
    replies: Counter[str] | None = None

    def __post_init__(self) -> None:
        self.replies = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        ctx = zmq.Context()
        socks = []
        for _ in range(self.conns):
            s: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 1000)
            CurveClient(self.server_key)(s)
            s.connect(self.endpoint)
            socks.append(s)
        assert self.replies is not None
        i = 0
        try:
            while not self._stop.is_set():
                for s in socks:
                    try:
                        for _ in range(20):
                            s.send(self.frames[i % len(self.frames)], zmq.NOBLOCK)
                            i += 1
                    except zmq.Again:
                        pass
                    while s.poll(0):
                        frames = s.recv_multipart()
                        try:
                            r = codec.decode(frames[0])
                        except ProtocolError:  # count whatever comes back
                            self.replies["undecodable"] += 1
                            continue
                        self.replies[r.code if isinstance(r, Error) else r.TYPE] += 1
                time.sleep(0.001)
        finally:
            ctx.destroy(linger=0)


def _junk(m: CapsuleManifest, asker: str) -> list[bytes]:
    held = m.all_chunks()[0].hash
    msgs: list[Message] = [
        PeerGet(rid=1, node=asker, manifest=m.hash, hash=held, token=b"\0" * 64 + b"1e99"),  # forged voucher
        PeerGet(rid=2, node=asker, manifest=m.hash, hash="../../../etc/shadow", token=b"x"),  # a path
        PeerGet(rid=3, node=asker, manifest=m.hash, hash="ab" * 32, token=b"x" * 64 + b"nan"),  # not held
        PeerGet(rid=4, node="n" * 200, manifest="../" * 20, hash=held, token=b""),
        GetChunks(node=asker, hashes=(held,)),  # not a peer request at all
    ]
    return [codec.encode(msg) for msg in msgs] + [random.Random(4).randbytes(200)]


def test_a_flooded_peer_still_serves_its_vouched_askers(
    secure_bus: Callable[..., RunningBus], paths: Paths, tmp_path: Path
) -> None:
    bus = secure_bus("open")
    m = _capsules(paths, tmp_path, {A: ("deb", ""), B: ("deb", "")})
    held = m.all_chunks()[0].hash
    # 8 connections (8 keys) from one address send junk as fast as they can; 48 more from another address are
    # more handshakes than one address may make
    with (
        peer(bus, tmp_path, A) as a,
        Flood(f"tcp://127.0.0.66:0;127.0.0.1:{a.port}", a.public, _junk(m, B), conns=8) as flood,
        Flood(f"tcp://127.0.0.67:0;127.0.0.1:{a.port}", a.public, _junk(m, B), conns=48),
    ):
        time.sleep(2.0)
        b, b_key = node(bus, B)
        try:
            t0 = time.monotonic()
            got = sources(b, B, m, want=(0,), credit=1)
            assert got.peers and got.peers[0].node == A
            vouched = PeerGet(rid=9, node=B, manifest=m.hash, hash=held, token=token_of(got))
            reply, payload = ask_peer(got.peers[0], b_key, vouched)
            waited = time.monotonic() - t0
        finally:
            b.close()
        assert isinstance(reply, Chunk) and digest(payload[0]) == held, reply
        assert waited < 5.0, f"a vouched asker waited {waited:.1f} s behind the flood"
    assert flood.replies is not None
    assert flood.replies["chunk"] == 0  # nothing for the flooders, not even the chunk the peer holds
    assert flood.replies[ErrorCode.RATE_LIMITED] > 0 and flood.replies[ErrorCode.NOT_FOUND] > 0
    assert a.stats is not None and a.stats["served"] == 1
    assert a.stats["limited"] > 0 and a.stats["handshakes_refused"] > 0


def test_a_peer_flooded_from_before_its_fetch_completes_its_boot(
    secure_bus: Callable[..., RunningBus], paths: Paths, tmp_path: Path
) -> None:
    """The flooders know the peer's key and port before it listens (as a swarm member would) and flood from the
    moment its server binds; the peer's own capsule fetch completes.  Its peer, measured in the same run: the
    same kind of fetch (a capsule of the same size) without a flood."""
    bus = secure_bus("open")
    m = _capsules(paths, tmp_path, {A: ("deb", ""), F: ("other", "")})
    with peer(bus, tmp_path, F) as baseline:
        pass
    keypair = new_keypair()
    port = _free_port()
    with Flood(f"tcp://127.0.0.66:0;127.0.0.1:{port}", keypair[0], _junk(m, A), conns=8) as flood:
        time.sleep(0.5)  # connecting: ZeroMQ retries until the peer binds
        with peer(bus, tmp_path, A, port=port, keypair=keypair) as a:
            time.sleep(1.0)
    assert a.fetched["event"] == "fetched" and a.stats is not None
    assert a.stats["limited"] > 0 and a.stats["served"] == 0
    assert flood.replies is not None and flood.replies["chunk"] == 0
    events = [json.loads(line) for line in (tmp_path / f"peer-{A.replace(':', '')}.log").read_text().splitlines()
              if line.startswith("{")]  # fmt: skip
    first = {e["event"]: e["timestamp"] for e in reversed(events)}
    assert first["peer_request_refused"] < first["capsule_fetched"]  # the flood reached it during its fetch
    flooded, alone = float(a.fetched["seconds"]), float(baseline.fetched["seconds"])
    print(f"capsule fetch alone {alone:.2f} s, flooded {flooded:.2f} s; peer stats {a.stats}")  # the report
    assert flooded < max(10.0, 10 * alone), (flooded, alone)
