"""Capsule delivery on perceus-bus: `get_manifest` → `manifest`, `get_chunks` → `chunk` + one raw frame.

Chunks are pre-built files, so serving never blocks the loop: a chunk is mmap'd once (and its BLAKE3
checked once per file identity, so a damaged chunk on the master is refused rather than sent), then every
send hands libzmq a memoryview of the mapping with `copy=False` — no Python copy, pages straight from the
page cache.  Mappings live in a bounded LRU; an evicted mapping is only dropped, never closed, because
libzmq may still hold a view of it (the mmap is freed when the last frame using it is sent).

Protocol v1 rule: one hash per `get_chunks`; the agent's credit is the number of requests it keeps in
flight (performance-notes.md §4), and each request gets exactly one reply.

Access follows assignment (issue 14): a node gets the manifest of its assigned vnfs (by name or by its current
hash) and only the chunks that manifest lists; anything else is NOT_FOUND (an attacker learns nothing about
what else exists) and an audit line.  The grant — manifest hash and chunk set — is looked up at most every
NODE_TTL per node, so the hot path is a dict lookup and a set membership.
"""

from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from perceus.errors import PerceusError, ProtocolError
from perceus.master.bus.handlers import Dispatcher, Incoming, Outgoing
from perceus.master.capsule import pacing
from perceus.master.capsule.index import CapsuleStoreIndex
from perceus.master.capsule.layout import Store
from perceus.master.config import Paths
from perceus.master.security.audit import AuditLog
from perceus.protocol import hwaddr
from perceus.protocol.capsule import decode_manifest, digest, is_hash
from perceus.protocol.enums import ErrorCode
from perceus.protocol.messages import Chunk, Error, GetChunks, GetManifest, Manifest

log = structlog.get_logger("perceus.capsule")

MAX_MAPPED = 512  # chunk mappings kept (address space only: ~1 GiB of 2 MiB chunks)
MAX_VERIFIED = 1 << 18
NODE_TTL = 5.0  # a node's enrollment and assignment are re-checked in the store at most this often
MAX_GRANTS = 100_000
MAX_MANIFESTS = 64  # decoded chunk sets kept (one per capsule version in use)


@dataclass(frozen=True)
class Grant:
    """What one node may fetch now: its assigned capsule's name, current manifest hash and chunk hashes."""

    expires: float
    vnfs: str
    manifest: str
    chunks: frozenset[str]


@dataclass
class ChunkServer:
    """The two bus handlers plus the mmap cache they share."""

    paths: Paths
    index: CapsuleStoreIndex
    max_mapped: int = MAX_MAPPED
    _maps: OrderedDict[str, mmap.mmap] = field(default_factory=OrderedDict)
    _verified: set[tuple[str, int, int, int]] = field(default_factory=set)
    _grants: dict[str, Grant] = field(default_factory=dict)
    _chunk_sets: OrderedDict[str, frozenset[str]] = field(default_factory=OrderedDict)
    sent_bytes: int = 0
    sent_chunks: int = 0
    # Boot-storm pacing (pacing.py): a `wait` instead of the transfer while the node has no slot.
    pace: Callable[[Incoming, str], Outgoing | None] = lambda item, node: None
    pacer: pacing.Pacer | None = None  # its slot table (`capsule_queue` control command, `perceus node status`)

    def __post_init__(self) -> None:
        self.store = Store(self.paths)
        self.audit = AuditLog.for_paths(self.paths)
        self.refused = 0

    # ------------------------------------------------------------------ helpers
    def _grant(self, disp: Dispatcher, item: Incoming, node: str) -> Grant | Outgoing:
        try:
            mac = hwaddr.normalize(node)
        except PerceusError:
            raise ProtocolError(f"invalid node id {node!r}") from None
        now = disp.clock()
        grant = self._grants.get(mac)
        if grant is not None and grant.expires > now:
            return grant
        found = disp.store.get(mac)
        if found is None:
            # Capsules can hold secrets (host keys …): only enrolled nodes get them.
            return Outgoing(
                item.identity,
                Error(code=ErrorCode.UNKNOWN_NODE, rid=item.msg.rid, message=f"{mac} is not a known node"),
            )
        h = (self.index.manifest_for(found) if found.vnfs else None) or ""  # per-node/group variants
        if len(self._grants) >= MAX_GRANTS:
            self._grants.clear()
        grant = self._grants[mac] = Grant(now + NODE_TTL, found.vnfs, h, self._chunks_of(h))
        return grant

    def _chunks_of(self, h: str) -> frozenset[str]:
        if not h:
            return frozenset()
        hit = self._chunk_sets.get(h)
        if hit is not None:
            self._chunk_sets.move_to_end(h)
            return hit
        found = self.index.manifest_bytes(h)
        try:
            chunks = frozenset(c.hash for c in decode_manifest(found[1], h).all_chunks()) if found else frozenset()
        except PerceusError as exc:
            log.error("manifest_unreadable", manifest=h, error=str(exc))
            chunks = frozenset()
        self._chunk_sets[h] = chunks
        while len(self._chunk_sets) > MAX_MANIFESTS:
            self._chunk_sets.popitem(last=False)
        return chunks

    def _not_assigned(self, item: Incoming, node: str, what: str, ref: str) -> Outgoing:
        self.refused += 1
        log.warning("capsule_access_refused", node=node, what=what, ref=ref[:80], peer=item.peer)
        self.audit.refusal("refused_capsule_access", item.key or item.peer, node=node, what=what, ref=ref[:80])
        return Outgoing(
            item.identity, Error(code=ErrorCode.NOT_FOUND, rid=item.msg.rid, message=f"no {what} {ref[:80]!r} for you")
        )

    def _map(self, h: str) -> mmap.mmap | None:
        m = self._maps.get(h)
        if m is not None:
            self._maps.move_to_end(h)
            return m
        try:
            fd = os.open(self.store.chunk_path(h), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size == 0:
                return None
            m = mmap.mmap(fd, st.st_size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        key = (h, st.st_ino, st.st_mtime_ns, st.st_size)
        if key not in self._verified:
            if digest(memoryview(m)) != h:
                log.error("chunk_damaged", chunk=h, path=str(self.store.chunk_path(h)))
                return None
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified.add(key)
        self._maps[h] = m
        while len(self._maps) > self.max_mapped:
            self._maps.popitem(last=False)  # dropped, not closed: libzmq may still reference it
        return m

    # ------------------------------------------------------------------ handlers
    def get_manifest(self, disp: Dispatcher, item: Incoming) -> Outgoing | None:
        msg = item.msg
        assert isinstance(msg, GetManifest)
        grant = self._grant(disp, item, msg.node)
        if isinstance(grant, Outgoing):
            return grant
        if not grant.manifest or msg.capsule not in (grant.vnfs, grant.manifest):
            return self._not_assigned(item, msg.node, "manifest", msg.capsule)
        refused = self.pace(item, msg.node)
        if refused is not None:
            return refused
        found = self.index.manifest_bytes(grant.manifest)
        if found is None:
            return Outgoing(
                item.identity,
                Error(code=ErrorCode.NOT_FOUND, rid=msg.rid, message=f"no manifest {msg.capsule!r} on this master"),
            )
        h, data = found
        signature = b""
        sig_path = self.store.manifest_path(h).with_suffix(".sig")
        if sig_path.exists():
            signature = sig_path.read_bytes()
        log.info("manifest_sent", node=msg.node, capsule=msg.capsule, manifest=h[:16], peer=item.peer)
        return Outgoing(
            item.identity, Manifest(rid=msg.rid, capsule=msg.capsule, hash=h, data=data, signature=signature)
        )

    def get_chunks(self, disp: Dispatcher, item: Incoming) -> Outgoing | None:
        msg = item.msg
        assert isinstance(msg, GetChunks)
        if len(msg.hashes) != 1:
            raise ProtocolError(f"get_chunks carries one hash in protocol v1, got {len(msg.hashes)}")
        h = msg.hashes[0]
        if not is_hash(h):
            raise ProtocolError(f"not a chunk hash: {h[:80]!r}")
        grant = self._grant(disp, item, msg.node)
        if isinstance(grant, Outgoing):
            return grant
        if h not in grant.chunks:
            return self._not_assigned(item, msg.node, "chunk", h)
        refused = self.pace(item, msg.node)
        if refused is not None:
            return refused
        m = self._map(h)
        if m is None:
            return Outgoing(
                item.identity, Error(code=ErrorCode.NOT_FOUND, rid=msg.rid, message=f"chunk {h} is not available")
            )
        self.sent_bytes += len(m)
        self.sent_chunks += 1
        return Outgoing(item.identity, Chunk(rid=msg.rid, hash=h, size=len(m)), payload=[memoryview(m)])


def install(dispatcher: Dispatcher, paths: Paths) -> ChunkServer:
    """Register capsule delivery on a Dispatcher (perceus-bus calls this at start-up)."""
    from perceus.master.capsule.chunkstore import protect

    protect(Store(paths))  # a store made before issue 14 had world-readable chunk directories
    index = dispatcher.capsules if isinstance(dispatcher.capsules, CapsuleStoreIndex) else CapsuleStoreIndex(paths)
    dispatcher.capsules = index
    server = ChunkServer(paths, index)
    dispatcher.extra[GetManifest] = server.get_manifest
    dispatcher.extra[GetChunks] = server.get_chunks
    pacing.install(dispatcher, server)
    from perceus.master.capsule import swarm_bus  # after pacing: swarm members bypass its slots

    swarm_bus.install(dispatcher, server, paths)
    return server
