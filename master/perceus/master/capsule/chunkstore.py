"""The content-addressed chunk store: zstd frames named by the BLAKE3 of their compressed bytes.

Compression runs on a small thread pool (zstd and BLAKE3 release the GIL), in order, with a bounded number of
chunks in flight.  A raw-hash → chunk cache (`chunkmap`, per capsule) lets a repack skip compressing chunks
it has packed before; zstd output is deterministic anyway, so without the cache the same chunk file results.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import blake3
import msgpack
import structlog
import zstandard

from perceus.errors import CapsuleError
from perceus.master.capsule.layout import Store
from perceus.protocol.capsule import Blob, ChunkRef, digest, is_hash

LEVEL = 3
log = structlog.get_logger("perceus.capsule")
Progress = Callable[[int], None]
TOP_MODE = 0o750  # chunks/ and manifests/: root and the bus's group (perceus-bus --user) only, never world
SUB_MODE = 0o711  # chunks/xx/: traverse only; the chunk files themselves are 0444


def protect(store: Store) -> None:
    """Make the chunk and manifest stores not world-readable (0444 chunks in 0755 dirs were, before issue 14).

    Capsule directories are 0700; a node may fetch only its assigned capsule's chunks (capsule/serve.py), so no
    local user may read them all either.  Idempotent; the group is kept (privileges.py may have set it)."""
    for top in (store.chunks, store.manifests):
        top.mkdir(parents=True, exist_ok=True)
        if os.stat(top).st_mode & 0o7777 != TOP_MODE and os.access(top, os.W_OK):
            os.chmod(top, TOP_MODE)


class ChunkStore:
    """Writes and reads chunks under `<state>/chunks/`."""

    def __init__(self, store: Store, *, level: int = LEVEL, workers: int | None = None, repair: bool = False) -> None:
        self.store = store
        self.repair = repair  # re-hash existing chunk files and rewrite damaged ones (rebuild)
        self.level = level
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.written: list[Path] = []  # chunk files this instance created (removed again if a build fails)
        protect(store)

    # ------------------------------------------------------------------ writing
    def _put(self, raw: bytes, cache: dict[str, ChunkRef]) -> ChunkRef:
        raw_hash = digest(raw)
        known = cache.get(raw_hash)
        if known is not None and self.store.chunk_path(known.hash).exists():
            return known
        comp = zstandard.ZstdCompressor(level=self.level, write_content_size=True).compress(raw)
        ref = ChunkRef(digest(comp), len(comp), len(raw))
        path = self.store.chunk_path(ref.hash)
        if self.repair and path.exists() and self.check(ref, decompress=False) is not None:
            log.warning("chunk_repaired", chunk=ref.hash[:16])
            path.unlink()
        if not path.exists():
            path.parent.mkdir(mode=SUB_MODE, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(comp)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o444)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.written.append(path)
        cache[raw_hash] = ref
        return ref

    def pack(self, raws: Iterable[bytes], cache: dict[str, ChunkRef], progress: Progress | None = None) -> Blob:
        """Store every raw chunk; the Blob names them in order with the raw stream's hash and size."""
        hasher = blake3.blake3()
        refs: list[ChunkRef] = []
        total = 0
        pending: deque[Future[ChunkRef]] = deque()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="chunk") as pool:
            try:
                for raw in raws:
                    hasher.update(raw)
                    total += len(raw)
                    pending.append(pool.submit(self._put, raw, cache))
                    while len(pending) > 2 * self.workers:
                        refs.append(pending.popleft().result())
                    if progress is not None:
                        progress(len(raw))
                refs.extend(f.result() for f in pending)
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
        return Blob(hasher.hexdigest(), total, tuple(refs))

    def discard_written(self) -> None:
        """Undo this instance's new chunk files (a failed import leaves nothing behind)."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()

    # ------------------------------------------------------------------ reading
    def read(self, ref: ChunkRef) -> bytes:
        try:
            return self.store.chunk_path(ref.hash).read_bytes()
        except FileNotFoundError:
            raise CapsuleError(f"chunk {ref.hash[:16]}… is missing from the chunk store") from None

    def check(self, ref: ChunkRef, *, decompress: bool = True) -> str | None:
        """None when the chunk file is intact, else a one-line reason."""
        try:
            data = self.store.chunk_path(ref.hash).read_bytes()
        except FileNotFoundError:
            return "missing"
        if len(data) != ref.size:
            return f"size {len(data)} != {ref.size}"
        if digest(data) != ref.hash:
            return "hash mismatch"
        if decompress:
            try:
                raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=ref.raw_size)
            except zstandard.ZstdError as exc:
                return f"zstd: {exc}"
            if len(raw) != ref.raw_size:
                return f"raw size {len(raw)} != {ref.raw_size}"
        return None


def load_chunkmap(path: Path) -> dict[str, ChunkRef]:
    """The raw → chunk cache; a damaged cache is only a lost optimisation, never an error."""
    try:
        data = msgpack.unpackb(path.read_bytes(), raw=False)
    except (OSError, ValueError, msgpack.UnpackException):
        return {}
    out: dict[str, ChunkRef] = {}
    if isinstance(data, dict):
        for raw_hash, v in data.items():
            if is_hash(raw_hash) and isinstance(v, list) and len(v) == 3 and is_hash(v[0]):
                out[raw_hash] = ChunkRef(v[0], int(v[1]), int(v[2]))
    return out


def chunkmap_bytes(cache: dict[str, ChunkRef], keep: Iterable[ChunkRef]) -> bytes:
    """The cache restricted to chunks the capsule still uses (so it does not grow forever)."""
    used = {r.hash for r in keep}
    return msgpack.packb(  # type: ignore[no-any-return]
        {k: [v.hash, v.size, v.raw_size] for k, v in sorted(cache.items()) if v.hash in used},
        use_bin_type=True,
    )
