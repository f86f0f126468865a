"""Capsule delivery on perceus-bus: `get_manifest` → `manifest`, `get_chunks` → `chunk` + one raw frame.

Chunks are pre-built files, so serving never blocks the loop: a chunk is mmap'd once (and its BLAKE3
checked once per file identity, so a damaged chunk on the master is refused rather than sent), then every
send hands libzmq a memoryview of the mapping with `copy=False` — no Python copy, pages straight from the
page cache.  Mappings live in a bounded LRU; an evicted mapping is only dropped, never closed, because
libzmq may still hold a view of it (the mmap is freed when the last frame using it is sent).

Protocol v1 rule: one hash per `get_chunks`; the agent's credit is the number of requests it keeps in
flight (performance-notes.md §4), and each request gets exactly one reply.
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
from perceus.protocol import hwaddr
from perceus.protocol.capsule import digest, is_hash
from perceus.protocol.enums import ErrorCode
from perceus.protocol.messages import Chunk, Error, GetChunks, GetManifest, Manifest

log = structlog.get_logger("perceus.capsule")

MAX_MAPPED = 512  # chunk mappings kept (address space only: ~1 GiB of 2 MiB chunks)
MAX_VERIFIED = 1 << 18
NODE_TTL = 5.0  # a node's enrollment is re-checked in the store at most this often (not per chunk)


@dataclass
class ChunkServer:
    """The two bus handlers plus the mmap cache they share."""

    paths: Paths
    index: CapsuleStoreIndex
    max_mapped: int = MAX_MAPPED
    _maps: OrderedDict[str, mmap.mmap] = field(default_factory=OrderedDict)
    _verified: set[tuple[str, int, int, int]] = field(default_factory=set)
    _known: dict[str, float] = field(default_factory=dict)
    sent_bytes: int = 0
    sent_chunks: int = 0
    # Boot-storm pacing (pacing.py): a `wait` instead of the transfer while the node has no slot.
    pace: Callable[[Incoming, str], Outgoing | None] = lambda item, node: None

    def __post_init__(self) -> None:
        self.store = Store(self.paths)

    # ------------------------------------------------------------------ helpers
    def _node_ok(self, disp: Dispatcher, item: Incoming, node: str) -> Outgoing | None:
        try:
            mac = hwaddr.normalize(node)
        except PerceusError:
            raise ProtocolError(f"invalid node id {node!r}") from None
        now = disp.clock()
        if self._known.get(mac, 0.0) > now:
            return None
        if disp.store.get(mac) is None:
            # Capsules can hold secrets (host keys …): only enrolled nodes get them.
            return Outgoing(
                item.identity,
                Error(code=ErrorCode.UNKNOWN_NODE, rid=item.msg.rid, message=f"{mac} is not a known node"),
            )
        if len(self._known) > 100_000:
            self._known.clear()
        self._known[mac] = now + NODE_TTL
        return None

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
        refused = self._node_ok(disp, item, msg.node) or self.pace(item, msg.node)
        if refused is not None:
            return refused
        found = self.index.manifest_bytes(msg.capsule)
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
        refused = self._node_ok(disp, item, msg.node) or self.pace(item, msg.node)
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
    index = dispatcher.capsules if isinstance(dispatcher.capsules, CapsuleStoreIndex) else CapsuleStoreIndex(paths)
    dispatcher.capsules = index
    server = ChunkServer(paths, index)
    dispatcher.extra[GetManifest] = server.get_manifest
    dispatcher.extra[GetChunks] = server.get_chunks
    pacing.install(dispatcher, server)
    return server
