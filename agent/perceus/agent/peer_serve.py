"""The node side of the capsule swarm (issue 21): serve verified chunks to vouched peers, fetch from the sources
the master names.

Serving: a thread with a ROUTER (bus.PeerRouter, Curve server with this node's own key) answers `peer_get` for
chunks this node verified and keeps (compressed, as they came, in `<dest>/swarm/<hash>`), only with a voucher
the master signed for that manifest (perceus.protocol.swarm) — peers serve only nodes the master vouches for.

Fetching (`pull`): a credit loop like capsule_fetch's, but each chunk's source comes from `get_sources`: a peer
(fetched over a PeerLink) or the master (`get_chunks` on the bus as before).  Every chunk is verified (size,
BLAKE3, zstd) before it is written, kept for serving or reported as held; a peer whose bytes fail is reported
`bad` (the master excludes it) and one that does not answer within `peer_timeout` is reported `dead`; the chunk
is assigned again — another peer, or the master.  On an emulated node the server thread outlives stage one's
recorded kexec (the process goes on as provisiond); on hardware kexec ends it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from perceus.agent import queue_wait, security
from perceus.agent.bus import BusClient, CurveClient, PeerLink, PeerRouter, poll_sockets
from perceus.agent.peer_limits import PeerLimits
from perceus.errors import BusError, CapsuleError, PerceusError, ProtocolError
from perceus.protocol import codec, hwaddr
from perceus.protocol.capsule import ChunkRef, digest, is_hash
from perceus.protocol.enums import ErrorCode
from perceus.protocol.messages import Chunk, Error, GetChunks, GetSources, PeerGet, Sources, SwarmPeer, Wait
from perceus.protocol.swarm import PEER_PORT, TOKEN_TTL, VERIFIER, token_payload

log = structlog.get_logger("perceus.agent.swarm")

SWARM_DIR = "swarm"
PEER_TIMEOUT = 5.0  # s without a chunk from a peer we wait on, beyond draining what is in flight: dead
PEER_TRIES = 10
# A peer's chunk is late only past LATE_FACTOR × the time our link needs for everything in flight: TCP flows
# sharing shaped links are far from equal (losses, backoff), and a peer taken for dead is skipped by the whole
# swarm for 30 s — at 100 emulated nodes a factor of 1 turned slow peers into ~600 "dead" ones in 3 minutes and
# the swarm's rate fell to a tenth of its links.
LATE_FACTOR = 3.0


class NotSupported(Exception):
    """The master does not speak the swarm (an older master, or `capsule swarm = no`): fetch as a star."""


@dataclass
class PeerServer:
    """Serves the chunks of one manifest this node holds; `start()` runs it on a daemon thread.

    Who gets a chunk: a connection whose Curve key (proved by the handshake, named by our ZAP handler) is the
    key the master's voucher names, for this manifest, unexpired by the master's clock, asking by hash for a
    chunk we hold (a hash is 64 hex digits and a member of `held`: never a path).  What one asker costs:
    bounded by `limits` (handshakes per address and key, requests per asker and in total, peer_limits.py).
    """

    manifest: str
    directory: Path
    curve: CurveClient | None = None
    port: int = PEER_PORT
    host: str = "*"
    held: set[str] = field(default_factory=set)
    master_offset: float = 0.0  # master clock − ours, from the last `sources`
    served: int = 0
    refused: int = 0
    limited: int = 0
    errors: int = 0
    limits: PeerLimits = field(default_factory=PeerLimits)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._router = PeerRouter(self.port, curve=self.curve, host=self.host, admit=self.limits.admit)
        self.port = self._router.port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peer-serve", daemon=True)
        self._vouched: dict[tuple[str, bytes], float] = {}  # (asker key, token) → issued, signature checked
        self._logged: dict[tuple[str, str], float] = {}  # (asker, reason) → last log line

    def start(self) -> PeerServer:
        self._thread.start()
        log.info("peer_server_started", port=self.port, manifest=self.manifest[:16], curve=self.curve is not None)
        return self

    def keep(self, h: str, data: memoryview | bytes) -> None:
        """Keep verified compressed bytes of chunk `h` for serving (written before they are announced)."""
        tmp = self.directory / f".{h}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.directory / h)
        self.held.add(h)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                pause = self.limits.pause()
                if pause:  # everybody's budget is spent: stop reading, TCP pushes back on the senders
                    time.sleep(pause)
                    continue
                got = self._router.receive(0.2)
                if got is None:
                    continue
                try:
                    self._answer(*got)
                except Exception:  # noqa: BLE001 - one bad answer (a full disk, a closed log stream) never ends serving
                    self.errors += 1
        finally:
            self._router.close()

    def _answer(self, identity: bytes, msg: Any, key: str) -> None:
        if not isinstance(msg, PeerGet):
            return
        asker = key or identity.hex()
        limits = self.limits
        if not limits.requests_per_asker.allow(asker) or not limits.refusals_per_asker.has(asker):
            self.limited += 1
            self._router.reply(identity, Error(rid=msg.rid, code=ErrorCode.RATE_LIMITED, message="slow down"))
            self._note(asker, msg, "rate limited")
            return
        why = self._refusal(msg, key)
        if why:
            limits.refusals_per_asker.allow(asker)
            self.refused += 1
            self._router.reply(identity, Error(rid=msg.rid, code=ErrorCode.NOT_FOUND, message=why))
            self._note(asker, msg, why)
            return
        try:
            data = (self.directory / msg.hash).read_bytes()
        except OSError:
            self._router.reply(identity, Error(rid=msg.rid, code=ErrorCode.NOT_FOUND, message="not held"))
            return
        self.served += 1
        self._router.reply(identity, Chunk(rid=msg.rid, hash=msg.hash, size=len(data)), data)

    def _note(self, asker: str, msg: PeerGet, why: str) -> None:
        """One log line per asker and reason per minute: a flood must not become a flood of log lines."""
        now = time.monotonic()
        if now - self._logged.get((asker, why), float("-inf")) < 60.0:
            return
        if len(self._logged) >= 4096:
            self._logged.clear()
        self._logged[(asker, why)] = now
        log.warning("peer_request_refused", node=str(msg.node)[:32], key=asker[:16], chunk=str(msg.hash)[:16],
                    reason=why, refused=self.refused, limited=self.limited)  # fmt: skip

    def _refusal(self, msg: PeerGet, key: str) -> str:
        if msg.manifest != self.manifest:
            return "another capsule"
        if not is_hash(msg.hash) or msg.hash not in self.held:
            return "not held"
        if msg.node != VERIFIER and not _is_node_id(msg.node):
            return "not a node id"
        if not msg.token:  # a keyless lab's master signs nothing; with a signing key a voucher is required
            return "" if security.trust().sign_key is None else "no voucher"
        if len(msg.token) > 64 + 24:
            return "no voucher"
        try:
            issued = float(msg.token[64:].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return "no voucher"
        master_now = time.time() + self.master_offset
        if not issued + TOKEN_TTL >= master_now >= issued - TOKEN_TTL:  # NaN fails too
            return "voucher expired"
        if (key, msg.token) in self._vouched:
            return ""
        if not security.verify_voucher(token_payload(msg.manifest, msg.node, key, issued), msg.token[:64]):
            # Also what a stolen voucher gets: it names another key than the one this connection proved.
            return "voucher not signed by the master for this key"
        if len(self._vouched) >= 4096:
            self._vouched = {k: t for k, t in self._vouched.items() if t + TOKEN_TTL >= master_now}
            if len(self._vouched) >= 4096:
                self._vouched.clear()
        self._vouched[(key, msg.token)] = issued
        return ""


def _is_node_id(node: str) -> bool:
    try:
        hwaddr.normalize(node)
    except PerceusError:
        return False
    return True


@dataclass
class _Flight:
    idx: int
    source: str  # "" = the master
    rid: int
    started: float


@dataclass
class SwarmPull:
    """One swarm fetch of the chunks `refs` (distinct chunk list of the manifest; index = position)."""

    client: BusClient
    node: str
    manifest: str
    refs: list[ChunkRef]
    place: Callable[[int, memoryview], bool]  # verify + write chunk i; False = bad bytes
    server: PeerServer | None
    credit: int = 8
    timeout: float = 10.0
    peer_timeout: float = PEER_TIMEOUT
    attempts: int = 8
    from_master: int = 0
    from_peers: int = 0
    retries: int = 0
    starved_s: float = 0.0  # time with free credit, chunks wanted and nothing in flight or assigned
    peer_chunk_s: list[float] = field(default_factory=list)  # request → verified, per peer chunk
    master_chunk_s: list[float] = field(default_factory=list)

    def run(self, todo: list[int], held: list[int]) -> int:
        """Fetch every index in `todo`; `held` are indices this node already has (reported first)."""
        random.shuffle(todo)  # a storm starts on different chunks, so peers hold different ones early
        missing = set(todo)
        order = list(todo)
        have = list(held)
        bad: list[str] = []
        dead: list[str] = []
        inflight: dict[int, _Flight] = {}  # by idx
        by_rid: dict[int, int] = {}  # master rid → idx
        links: dict[str, tuple[PeerLink, SwarmPeer]] = {}
        tries: dict[int, int] = {}
        peer_tries: dict[int, int] = {}
        token = b""
        ask_rid = 0
        asked_at = 0.0
        not_before = 0.0
        last_master = time.monotonic()
        progress: dict[str, float] = {}  # source ("" = master) → when its last chunk arrived
        began, received = time.monotonic(), [0]  # our download rate so far: how long what is in flight takes
        supported = False

        def again(idx: int, why: str, peer: bool = False) -> None:
            inflight.pop(idx, None)
            # A failing peer is the swarm's problem (reported, excluded or skipped), not the chunk's: it counts
            # toward `attempts` only in bulk (PEER_TRIES per attempt), so a few bad peers never fail a boot.
            tries[idx] = tries.get(idx, 0) + (1 if not peer else 0)
            peer_tries[idx] = peer_tries.get(idx, 0) + (1 if peer else 0)
            self.retries += 1
            log.warning("chunk_retry", chunk=self.refs[idx].hash[:16], reason=why, attempt=tries[idx])
            if tries[idx] + peer_tries[idx] // PEER_TRIES >= self.attempts:
                raise CapsuleError(f"chunk {self.refs[idx].hash[:16]}… failed {tries[idx]} times ({why}); giving up")
            order.append(idx)

        def arrived(idx: int, data: memoryview, source: str) -> None:
            if not self.place(idx, data):
                log.warning("chunk_rejected", chunk=self.refs[idx].hash[:16], reason="hash mismatch",
                            source=source or "master")  # fmt: skip
                if source:
                    bad.append(source)
                    link = links.pop(source, None)
                    if link is not None:
                        link[0].close()
                again(idx, f"hash mismatch (peer {source})" if source else "hash mismatch", peer=bool(source))
                return
            flight = inflight.pop(idx, None)
            missing.discard(idx)
            progress[source] = time.monotonic()
            if flight is not None:
                (self.peer_chunk_s if source else self.master_chunk_s).append(progress[source] - flight.started)
            received[0] += len(data)
            if self.server is not None:
                self.server.keep(self.refs[idx].hash, data)
            have.append(idx)
            if source:
                self.from_peers += 1
            else:
                self.from_master += 1

        try:
            idle_since = -1.0
            while missing:
                now = time.monotonic()
                if inflight:
                    if idle_since >= 0:
                        self.starved_s += now - idle_since
                    idle_since = -1.0
                elif idle_since < 0:
                    idle_since = now
                free = self.credit - len(inflight)
                wanted = [i for i in dict.fromkeys(order) if i in missing and i not in inflight]
                if not ask_rid and now >= not_before and ((free > 0 and wanted) or have or bad or dead):
                    msg = GetSources(node=self.node, manifest=self.manifest, want=tuple(wanted[:256]),
                                     credit=max(0, free), have=tuple(have), bad=tuple(bad), dead=tuple(dead),
                                     port=self.server.port if self.server is not None else 0)  # fmt: skip
                    ask_rid, asked_at = self.client.send(msg), now
                    have, bad, dead = [], [], []
                socks = [self.client.socket] + [link.socket for link, _ in links.values()]
                for sock in poll_sockets(socks, 0.05):
                    frames = sock.recv_multipart(copy=False)
                    try:
                        reply = codec.decode(frames[0].buffer, max_bytes=codec.MAX_HEADER_BYTES)
                    except ProtocolError:  # a bad frame from a peer or the master is dropped
                        continue
                    if sock is self.client.socket:
                        last_master = time.monotonic()
                        if reply.rid == ask_rid:
                            ask_rid = 0
                            if isinstance(reply, Error):
                                if not supported:
                                    raise NotSupported(f"{reply.code}: {reply.message}")
                                if reply.code in (ErrorCode.NOT_FOUND, ErrorCode.UNKNOWN_NODE):
                                    raise BusError(f"master refused get_sources: {reply.code}: {reply.message}",
                                                   code=reply.code)  # fmt: skip
                                not_before = time.monotonic() + 1.0
                                continue
                            if not isinstance(reply, Sources):
                                continue
                            supported = True
                            token = reply.token + f"{reply.issued:.3f}".encode() if reply.token else b""
                            if self.server is not None and reply.now:
                                self.server.master_offset = reply.now - time.time()
                            not_before = time.monotonic() + reply.retry_after
                            self._start(reply, inflight, by_rid, links, token, missing)
                            continue
                        idx = by_rid.pop(reply.rid, -1)
                        if idx < 0 or idx not in inflight:
                            continue
                        if isinstance(reply, Chunk) and len(frames) == 2 and reply.hash == self.refs[idx].hash:
                            arrived(idx, frames[1].buffer, "")
                        elif isinstance(reply, Wait):
                            inflight.pop(idx, None)
                            order.append(idx)
                            not_before = time.monotonic() + queue_wait.note(reply)
                        elif isinstance(reply, Error) and reply.code in (ErrorCode.NOT_FOUND, ErrorCode.RATE_LIMITED):
                            again(idx, f"{reply.code}: {reply.message}")
                        elif isinstance(reply, Error):
                            raise BusError(f"master refused get_chunks: {reply.code}: {reply.message}", code=reply.code)
                        else:
                            again(idx, f"unexpected {reply.TYPE} reply")
                        continue
                    source = next((n for n, (link, _) in links.items() if link.socket is sock), "")
                    flight = next((f for f in inflight.values() if f.rid == reply.rid and f.source == source), None)
                    if flight is None:
                        continue
                    if isinstance(reply, Chunk) and len(frames) == 2 and reply.hash == self.refs[flight.idx].hash:
                        arrived(flight.idx, frames[1].buffer, source)
                    else:
                        dead.append(source)
                        again(flight.idx, f"peer {source}: {getattr(reply, 'message', reply.TYPE)}", peer=True)
                now = time.monotonic()
                # A peer is late only past the time our link needs for everything in flight (at the rate it has
                # delivered so far; 4 timeouts before the first byte): on a 4 Mbit/s link eight 2 MiB chunks from
                # eight peers all arrive after ~35 s, none of them dead.
                rate = received[0] / max(1e-3, now - began)
                queued = sum(self.refs[f.idx].size for f in inflight.values())
                drain = queued / rate if rate > 0 else 4 * self.peer_timeout
                for flight in list(inflight.values()):
                    limit = self.peer_timeout + LATE_FACTOR * drain if flight.source else self.timeout
                    # Timed out = no chunk from that source for `limit` since this request: one connection
                    # delivers its chunks one after another, so a slow link is not a dead one.
                    if now - max(flight.started, progress.get(flight.source, 0.0)) > limit:
                        if flight.source:
                            dead.append(flight.source)
                            link = links.pop(flight.source, None)
                            if link is not None:
                                link[0].close()
                        by_rid.pop(flight.rid, None)
                        again(flight.idx, f"timeout (peer {flight.source})" if flight.source else "timeout",
                              peer=bool(flight.source))  # fmt: skip
                if ask_rid and now - max(asked_at, last_master) > self.timeout:  # (it may queue behind chunks)
                    ask_rid = 0  # the master went away: a fresh socket, then ask again
                    if not supported:
                        raise NotSupported("no answer to get_sources")
                if now - last_master > self.timeout and (ask_rid or by_rid):
                    self.client.failover()
                    last_master = now
                    ask_rid = 0
                    # A restarted master knows nothing of the swarm: tell it everything we hold again.
                    have = sorted(set(held) | {i for i in todo if i not in missing})
                    for rid in list(by_rid):
                        again(by_rid.pop(rid), "timeout")
        finally:
            for pair in links.values():
                pair[0].close()
        if have and supported:  # tell the master what we hold now (best effort: others may fetch from us)
            self.client.send(GetSources(node=self.node, manifest=self.manifest, have=tuple(have),
                                        port=self.server.port if self.server is not None else 0))  # fmt: skip
        return self.from_master + self.from_peers

    def _start(self, reply: Sources, inflight: dict[int, _Flight], by_rid: dict[int, int],
               links: dict[str, tuple[PeerLink, SwarmPeer]], token: bytes, missing: set[int]) -> None:  # fmt: skip
        now = time.monotonic()
        for pair in reply.assign:
            if len(pair) != 2:
                continue
            idx, slot = pair
            if idx not in missing or idx in inflight or not 0 <= idx < len(self.refs):
                continue
            h = self.refs[idx].hash
            if slot < 0 or slot >= len(reply.peers) or not reply.peers[slot].endpoint:
                rid = self.client.send(GetChunks(node=self.node, hashes=(h,)))
                inflight[idx] = _Flight(idx, "", rid, now)
                by_rid[rid] = idx
                continue
            peer = reply.peers[slot]
            link = links.get(peer.node)
            if link is None:
                curve = None
                if isinstance(self.client._curve, CurveClient) and peer.key:
                    curve = self.client._curve.toward(bytes.fromhex(peer.key))
                link = links[peer.node] = (PeerLink(peer.endpoint, curve=curve), peer)
            rid = self.client.next_rid()
            link[0].send(PeerGet(rid=rid, node=self.node, manifest=self.manifest, hash=h, token=token))
            inflight[idx] = _Flight(idx, peer.node, rid, now)


_servers: dict[tuple[str, Path], PeerServer] = {}
LISTEN_PORT = PEER_PORT  # where server_for listens (a lab running several nodes on one address sets its own)


def server_for(client: BusClient, manifest: str, dest: Path) -> PeerServer | None:
    """This process's peer server for `manifest` into `dest` (started on first use, kept for later fetches)."""
    found = _servers.get((manifest, dest))
    if found is not None:
        return found
    curve = client._curve if isinstance(client._curve, CurveClient) else None
    try:
        server = PeerServer(manifest, dest / SWARM_DIR, curve=curve, port=LISTEN_PORT).start()
    except Exception as exc:  # a port in use, no address: fetch without serving  # noqa: BLE001
        log.warning("peer_server_unavailable", error=str(exc))
        return None
    _servers[(manifest, dest)] = server
    return server


def held_on_disk(server: PeerServer | None, refs: list[ChunkRef], done: set[str]) -> list[int]:
    """Indices of journaled chunks whose compressed bytes are still kept (and verify): served again."""
    if server is None:
        return []
    out = []
    for i, ref in enumerate(refs):
        if ref.hash in done:
            try:
                data = (server.directory / ref.hash).read_bytes()
            except OSError:
                continue
            if digest(data) == ref.hash:
                server.held.add(ref.hash)
                out.append(i)
    return out
