"""Fetch a capsule from perceus-bus: verified manifest, credit-flow chunk pulls, verified zstd unpack, resume.

Flow: `get_manifest` by hash → the bytes must hash to what `welcome` named (else nothing is fetched); then one
`get_chunks` per chunk with at most `credit` in flight.  Every chunk's BLAKE3 (of the compressed bytes) is
checked before it is decompressed; a bad, missing or unanswered chunk is asked for again (up to `attempts`
times).  Each chunk is verified and decompressed as it arrives, straight from the ZeroMQ frame into its place
in the output file (`pwrite` at the raw offset): no second copy of the capsule sits in RAM, and libzmq's I/O
thread keeps receiving the next chunks meanwhile (measured faster than a thread pool, whose hand-offs stall
the credit loop).  A journal of finished chunks lets a later call (after a master restart, or our own) fetch
only what is missing.  For a stateless capsule the root filesystem cpio becomes the kexec initrd.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import structlog
import zstandard

from perceus.agent import queue_wait, security
from perceus.agent.bus import BusClient
from perceus.errors import BusError, CapsuleError, ProtocolError
from perceus.protocol import codec
from perceus.protocol.capsule import Blob, CapsuleManifest, ChunkRef, decode_manifest, digest, kernel_cmdline
from perceus.protocol.enums import ErrorCode
from perceus.protocol.messages import Chunk, Error, GetChunks, GetManifest, Manifest, Wait

log = structlog.get_logger("perceus.agent")

OUTPUT = {"kernel": "kernel", "initrd": "initrd", "rootfs": "rootfs.cpio"}
JOURNAL = "chunks.done"
MANIFEST = "manifest"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FetchedCapsule:
    """What kexec needs: the kernel, the initrd (for stateless: the rootfs cpio) and the command line."""

    kernel: Path
    initrd: Path
    cmdline: str
    manifest: dict[str, Any]
    rootfs: Path = Path()
    manifest_hash: str = ""
    fetched_chunks: int = 0
    reused_chunks: int = 0


@dataclass
class _Target:
    """Where one chunk's raw bytes go (a chunk may recur: same bytes, several places)."""

    ref: ChunkRef
    places: list[tuple[int, int]] = field(default_factory=list)  # (output fd, raw offset)


def _manifest(client: BusClient, node: str, manifest_hash: str, dest: Path, timeout: float) -> CapsuleManifest:
    path = dest / MANIFEST
    try:
        cached = path.read_bytes()
        if digest(cached) == manifest_hash:
            return decode_manifest(cached, manifest_hash)
    except (OSError, CapsuleError):
        pass
    while True:
        reply = client.call(GetManifest(node=node, capsule=manifest_hash), timeout=timeout)
        if not isinstance(reply, Wait):
            break
        time.sleep(queue_wait.note(reply))  # no transfer slot yet (boot-storm pacing)
    if not isinstance(reply, Manifest):
        raise BusError(f"master answered get_manifest with {reply.TYPE}")
    manifest = decode_manifest(reply.data, manifest_hash)  # raises before anything is fetched
    security.verify_manifest(reply.data, reply.signature)  # Ed25519 by the master's key, or nothing is fetched
    tmp = path.with_name(".manifest.tmp")
    tmp.write_bytes(reply.data)
    os.replace(tmp, path)
    return manifest


def _journal(dest: Path, manifest_hash: str) -> set[str]:
    """Chunks a previous attempt at this same manifest verified and wrote."""
    try:
        lines = (dest / JOURNAL).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return set()
    if not lines or lines[0] != manifest_hash:
        return set()
    return set(lines[1:])


def _place(dctx: zstandard.ZstdDecompressor, ref: ChunkRef, data: memoryview, places: list[tuple[int, int]]) -> bool:
    """Verify, decompress and place one chunk; False means the bytes were not the chunk asked for."""
    if len(data) != ref.size or digest(data) != ref.hash:
        return False
    try:
        raw = dctx.decompress(data, max_output_size=ref.raw_size)
    except zstandard.ZstdError:
        return False
    if len(raw) != ref.raw_size:
        return False
    for fd, offset in places:
        view = memoryview(raw)
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n  # noqa: PLW2901 - the loop value normalised in place
    return True


def fetch_capsule(
    client: BusClient,
    node: str,
    manifest_hash: str,
    dest: Path,
    *,
    credit: int = 8,
    progress: Progress | None = None,
    timeout: float = 10.0,
    attempts: int = 5,
    need_rootfs: Callable[[CapsuleManifest], bool] | None = None,
    swarm: bool = True,
) -> FetchedCapsule:
    """Fetch and verify the capsule `manifest_hash` into `dest`; see the module docstring.

    `swarm`: ask the master for sources (peers first, perceus.agent.peer_serve) and serve what we verified;
    a master without the swarm (older, or `capsule swarm = no`) is fetched from as a star.

    `need_rootfs(manifest)` False skips the root stream (a stateful node booting its installed disk).
    """
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    m = _manifest(client, node, manifest_hash, dest, timeout)
    skip_rootfs = need_rootfs is not None and not need_rootfs(m)
    done = _journal(dest, manifest_hash)
    fds: dict[str, int] = {}
    targets: dict[str, _Target] = {}
    try:
        for role, blob in m.blobs:
            if role == "rootfs" and skip_rootfs:
                continue
            fd = os.open(dest / OUTPUT[role], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fds[role] = fd
            os.ftruncate(fd, blob.size)
            offset = 0
            for ref in blob.chunks:
                targets.setdefault(ref.hash, _Target(ref)).places.append((fd, offset))
                offset += ref.raw_size
        if not done:
            (dest / JOURNAL).write_text(manifest_hash + "\n", encoding="ascii")
        todo = deque(h for h in targets if h not in done)
        reused = len(targets) - len(todo)
        total = sum(t.ref.raw_size for t in targets.values())
        got = total - sum(targets[h].ref.raw_size for h in todo)
        log.info(
            "capsule_fetch_started",
            capsule=m.name,
            manifest=manifest_hash[:16],
            chunks=len(targets),
            missing=len(todo),
            rootfs=not skip_rootfs,
            master=client.master,
        )
        with open(dest / JOURNAL, "a", encoding="ascii") as journal:
            swarmed = _swarm(client, node, manifest_hash, m, dest, targets, todo, done, journal, swarm=swarm,
                             credit=credit, timeout=timeout, attempts=attempts, progress=progress, got=got,
                             total=total)  # fmt: skip
            fetched = (
                swarmed
                if swarmed is not None
                else _pull(
                    client,
                    node,
                    targets,
                    todo,
                    journal,
                    credit=credit,
                    timeout=timeout,
                    attempts=attempts,
                    progress=progress,
                    got=got,
                    total=total,
                )
            )
        for fd in fds.values():
            os.fsync(fd)
    finally:
        for fd in fds.values():
            os.close(fd)
    _check_blob(dest / OUTPUT["kernel"], m.kernel, "kernel")
    seconds = time.monotonic() - started
    log.info(
        "capsule_fetched",
        capsule=m.name,
        manifest=manifest_hash[:16],
        fetched=fetched,
        reused=reused,
        raw_bytes=total,
        duration_ms=round(seconds * 1000),
        mb_per_s=round(total / seconds / 1e6, 1) if seconds > 0 else 0,
    )
    rootfs = dest / OUTPUT["rootfs"]
    initrd = dest / OUTPUT["initrd"] if m.type == "stateful" and m.initrd is not None else rootfs
    return FetchedCapsule(
        kernel=dest / OUTPUT["kernel"],
        initrd=initrd,
        # The capsule's own arguments only: stage one appends its hand-over keys (perceus.master=, net …).
        cmdline=kernel_cmdline(m),
        manifest=msgpack.unpackb(m.data, raw=False),
        rootfs=rootfs,
        manifest_hash=manifest_hash,
        fetched_chunks=fetched,
        reused_chunks=reused,
    )


def _swarm(
    client: BusClient,
    node: str,
    manifest_hash: str,
    m: CapsuleManifest,
    dest: Path,
    targets: dict[str, _Target],
    todo: deque[str],
    done: set[str],
    journal: Any,
    *,
    swarm: bool,
    credit: int,
    timeout: float,
    attempts: int,
    progress: Progress | None,
    got: int,
    total: int,
) -> int | None:
    """The swarm fetch of `todo` (issue 21); None = the master has no swarm: fetch as before."""
    if not swarm or not todo:
        return None
    from perceus.agent import peer_serve

    refs = m.all_chunks()  # the master numbers chunks the same way (distinct, fetch order)
    server = peer_serve.server_for(client, manifest_hash, dest)
    wanted = set(todo)
    indices = [i for i, ref in enumerate(refs) if ref.hash in wanted]
    dctx = zstandard.ZstdDecompressor()
    count = [got]

    def place(idx: int, data: memoryview) -> bool:
        target = targets[refs[idx].hash]
        if not _place(dctx, target.ref, data, target.places):
            return False
        journal.write(target.ref.hash + "\n")
        count[0] += target.ref.raw_size
        if progress is not None:
            progress(count[0], total)
        return True

    pull = peer_serve.SwarmPull(
        client, node, manifest_hash, refs, place, server, credit=credit, timeout=timeout, attempts=attempts
    )
    try:
        n = pull.run(indices, peer_serve.held_on_disk(server, refs, done))
    except peer_serve.NotSupported as exc:
        log.info("capsule_swarm_unavailable", reason=str(exc))
        return None
    journal.flush()
    log.info("capsule_swarm_done", from_master=pull.from_master, from_peers=pull.from_peers,
             served=server.served if server is not None else 0, retries=pull.retries,
             starved_s=round(pull.starved_s, 1), peer_chunk_s=_spread(pull.peer_chunk_s),
             master_chunk_s=_spread(pull.master_chunk_s))  # fmt: skip
    return n


def _spread(times: list[float]) -> str:
    """`p50/max` seconds of a list of chunk times (`-` when empty): one log field."""
    if not times:
        return "-"
    ordered = sorted(times)
    return f"{ordered[len(ordered) // 2]:.1f}/{ordered[-1]:.1f}"


def _check_blob(path: Path, blob: Blob, what: str) -> None:
    if digest(path.read_bytes()) != blob.hash:
        raise CapsuleError(f"{what} does not match the manifest after unpacking")


def _pull(
    client: BusClient,
    node: str,
    targets: dict[str, _Target],
    todo: deque[str],
    journal: Any,
    *,
    credit: int,
    timeout: float,
    attempts: int,
    progress: Progress | None,
    got: int,
    total: int,
) -> int:
    """The credit loop; returns how many chunks were fetched."""
    inflight: dict[int, tuple[str, float]] = {}
    tries: dict[str, int] = {}
    fetched = 0
    last_reply = time.monotonic()
    hold = 0.0  # no new requests before this (the master said `wait`: no transfer slot)

    def retry(h: str, why: str) -> None:
        tries[h] = tries.get(h, 0) + 1
        log.warning("chunk_retry", chunk=h[:16], reason=why, attempt=tries[h])
        if tries[h] >= attempts:
            raise CapsuleError(f"chunk {h[:16]}… failed {tries[h]} times ({why}); giving up")
        todo.append(h)

    dctx = zstandard.ZstdDecompressor()
    sock = client.socket
    while todo or inflight:
        # Top up after every reply, so `credit` requests stay in flight while we unpack.
        while todo and len(inflight) < credit and time.monotonic() >= hold:
            h = todo.popleft()
            rid = client.send(GetChunks(node=node, hashes=(h,)))
            inflight[rid] = (h, time.monotonic())
        if sock.poll(100):
            last_reply = time.monotonic()
            frames = sock.recv_multipart(copy=False)
            try:
                reply = codec.decode(frames[0].buffer)
            except ProtocolError:  # a bad frame is dropped; the chunk is asked again
                continue
            entry = inflight.pop(reply.rid, None)
            if entry is None:
                continue  # a late answer to a request we already re-sent
            h, _ = entry
            if isinstance(reply, Chunk) and len(frames) == 2 and reply.hash == h:
                if _place(dctx, targets[h].ref, frames[1].buffer, targets[h].places):
                    fetched += 1
                    got += targets[h].ref.raw_size
                    journal.write(h + "\n")
                    if progress is not None:
                        progress(got, total)
                else:
                    log.warning("chunk_rejected", chunk=h[:16], reason="hash mismatch")
                    retry(h, "hash mismatch")
            elif isinstance(reply, Wait):  # the slot went (master restart, idle): queue again, not a failure
                todo.appendleft(h)
                hold = time.monotonic() + queue_wait.note(reply)
            elif isinstance(reply, Error) and reply.code in (ErrorCode.NOT_FOUND, ErrorCode.RATE_LIMITED):
                retry(h, f"{reply.code}: {reply.message}")
            elif isinstance(reply, Error):
                raise BusError(f"master refused get_chunks: {reply.code}: {reply.message}", code=reply.code)
            else:
                retry(h, f"unexpected {reply.TYPE} reply")
        now = time.monotonic()
        # Unanswered for `timeout` since the request and since the last reply: the master sends chunks one after
        # another on this connection, so on a slow link the eighth of eight in flight is not late.
        expired = [rid for rid, (_, t) in inflight.items() if now - max(t, last_reply) > timeout]
        if expired:
            # The master went away (restart) or dropped requests: start a fresh socket (queued requests to a
            # dead peer are discarded with it) and ask again for what was unanswered.
            for rid in expired:
                h, _ = inflight.pop(rid)
                retry(h, "timeout")
            if now - last_reply > timeout:
                client.failover()
                sock = client.socket
                last_reply = now
    journal.flush()
    return fetched
