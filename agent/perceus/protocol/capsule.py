"""Capsule manifest format v1, shared by master (writes it) and agent (verifies it) — design.md §4.

A manifest is one msgpack map; its *exact bytes* are what travels, what is hashed (BLAKE3 → the manifest
hash a `welcome` names) and what a later Ed25519 signature covers (detached: `Manifest.signature`), so
nothing here ever re-encodes a received manifest.  Chunk hashes are BLAKE3 of the *compressed* bytes, so a
node verifies a chunk before handing it to the zstd decompressor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import blake3
import msgpack

from perceus.errors import CapsuleError

FORMAT = 1
LAYOUT_CPIO = "cpio-newc"
TYPES = ("stateless", "stateful", "hybrid")
# The manifest travels inside one header frame (codec.MAX_HEADER_BYTES); ~100 bytes per chunk entry, so
# this allows ~10k chunks (≈20 GiB of root filesystem at 2 MiB chunks).
MAX_MANIFEST_BYTES = 1 << 20
MAX_CHUNK_RAW = 16 << 20
_HEX = re.compile(r"^[0-9a-f]{64}$")


def digest(data: bytes | memoryview) -> str:
    """The one hash of the capsule format: BLAKE3, 256 bits, lower-case hex."""
    return str(blake3.blake3(data).hexdigest())


def is_hash(value: object) -> bool:
    return isinstance(value, str) and _HEX.match(value) is not None


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One zstd frame in the chunk store: BLAKE3 of the compressed bytes, compressed and raw sizes."""

    hash: str
    size: int
    raw_size: int

    def to_wire(self) -> dict[str, Any]:
        return {"hash": self.hash, "size": self.size, "raw_size": self.raw_size}


@dataclass(frozen=True, slots=True)
class Blob:
    """A file delivered as chunks (kernel, initrd, root filesystem stream); `hash` is BLAKE3 of the raw file."""

    hash: str
    size: int
    chunks: tuple[ChunkRef, ...]

    def to_wire(self) -> dict[str, Any]:
        return {"hash": self.hash, "size": self.size, "chunks": [c.to_wire() for c in self.chunks]}


@dataclass(frozen=True, slots=True)
class CapsuleManifest:
    """The decoded, validated view of a manifest; `data`/`hash` keep the exact bytes it came from."""

    name: str
    version: int
    created: float
    type: str
    kernel: Blob
    initrd: Blob | None
    rootfs: Blob
    layout: str
    chunk_size: int
    kexec_args: str = ""
    kernel_args: str = ""
    console: str = ""
    format: int = FORMAT
    data: bytes = b""
    hash: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blobs(self) -> tuple[tuple[str, Blob], ...]:
        """(role, blob) in fetch order: kernel, initrd, rootfs."""
        out: list[tuple[str, Blob]] = [("kernel", self.kernel)]
        if self.initrd is not None:
            out.append(("initrd", self.initrd))
        out.append(("rootfs", self.rootfs))
        return tuple(out)

    def all_chunks(self) -> list[ChunkRef]:
        """Every distinct chunk the capsule needs, in fetch order."""
        seen: set[str] = set()
        out: list[ChunkRef] = []
        for _, blob in self.blobs:
            for ref in blob.chunks:
                if ref.hash not in seen:
                    seen.add(ref.hash)
                    out.append(ref)
        return out

    @property
    def packed_size(self) -> int:
        return sum(c.size for c in self.all_chunks())


def encode_manifest(
    *,
    name: str,
    version: int,
    created: float,
    type: str,
    kernel: Blob,
    initrd: Blob | None,
    rootfs: Blob,
    chunk_size: int,
    kexec_args: str,
    kernel_args: str,
    console: str,
    stateful: Mapping[str, str] | None = None,
) -> bytes:
    """The manifest bytes; key order is fixed so equal content gives equal bytes (and hash).

    `stateful` (TARGETS, FILESYSTEM, SWAP_SIZE, BOOT_SIZE in lower case) is what a stateful node's installer
    reads; older agents keep it in `CapsuleManifest.extra` unread.
    """
    body: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "created": created,
        "type": type,
        "kernel": kernel.to_wire(),
    }
    if initrd is not None:
        body["initrd"] = initrd.to_wire()
    body["rootfs"] = {
        "layout": LAYOUT_CPIO,
        "raw_size": rootfs.size,
        "hash": rootfs.hash,
        "chunk_size": chunk_size,
        "chunks": [c.to_wire() for c in rootfs.chunks],
    }
    body["config"] = {"kexec_args": kexec_args, "kernel_args": kernel_args, "console": console}
    if stateful:
        body["stateful"] = dict(sorted(stateful.items()))
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------------ decoding


def _get(m: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = m.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CapsuleError(f"manifest field {where}{key}: expected {kind.__name__}")
    return value


def _size(m: Mapping[str, Any], key: str, where: str, cap: int = 1 << 50) -> int:
    value: int = _get(m, key, int, where)
    if not 0 <= value <= cap:
        raise CapsuleError(f"manifest field {where}{key}: {value} out of range")
    return value


def _hash(m: Mapping[str, Any], key: str, where: str) -> str:
    value = m.get(key)
    if not is_hash(value):
        raise CapsuleError(f"manifest field {where}{key}: not a BLAKE3 hex digest")
    assert isinstance(value, str)
    return value


def _chunks(raw: object, where: str) -> tuple[ChunkRef, ...]:
    if not isinstance(raw, list):
        raise CapsuleError(f"manifest field {where}chunks: expected an array")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise CapsuleError(f"manifest field {where}chunks[{i}]: expected a map")
        w = f"{where}chunks[{i}]."
        out.append(
            ChunkRef(
                _hash(item, "hash", w),
                _size(item, "size", w, 2 * MAX_CHUNK_RAW),
                _size(item, "raw_size", w, MAX_CHUNK_RAW),
            )
        )
    return tuple(out)


def _blob(raw: object, where: str, size_key: str = "size") -> Blob:
    if not isinstance(raw, dict):
        raise CapsuleError(f"manifest field {where}: expected a map")
    w = where + "."
    blob = Blob(_hash(raw, "hash", w), _size(raw, size_key, w), _chunks(raw.get("chunks"), w))
    if sum(c.raw_size for c in blob.chunks) != blob.size:
        raise CapsuleError(f"manifest field {where}: chunk sizes do not add up to {blob.size}")
    return blob


def decode_manifest(data: bytes, expected_hash: str | None = None) -> CapsuleManifest:
    """Verify (hash first, when given) and validate manifest bytes; raises CapsuleError only."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise CapsuleError(f"manifest of {len(data)} bytes exceeds {MAX_MANIFEST_BYTES}")
    actual = digest(data)
    if expected_hash is not None and actual != expected_hash:
        raise CapsuleError(f"manifest hash mismatch: expected {expected_hash[:16]}…, got {actual[:16]}…")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - hostile bytes raise many msgpack types; all mean "not a manifest"
        raise CapsuleError(f"undecodable manifest: {type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise CapsuleError("manifest is not a map")
    fmt = _get(body, "format", int, "")
    if fmt != FORMAT:
        raise CapsuleError(f"manifest format {fmt} is not supported (this agent reads {FORMAT})")
    kind = _get(body, "type", str, "")
    if kind not in TYPES:
        raise CapsuleError(f"manifest type {kind!r} is not one of {', '.join(TYPES)}")
    rootfs_raw = body.get("rootfs")
    rootfs = _blob(rootfs_raw, "rootfs", "raw_size")
    assert isinstance(rootfs_raw, dict)
    layout = _get(rootfs_raw, "layout", str, "rootfs.")
    if layout != LAYOUT_CPIO:
        raise CapsuleError(f"rootfs layout {layout!r} is not supported")
    config = body.get("config", {})
    if not isinstance(config, dict):
        raise CapsuleError("manifest field config: expected a map")
    strings = {k: config.get(k, "") for k in ("kexec_args", "kernel_args", "console")}
    if not all(isinstance(v, str) for v in strings.values()):
        raise CapsuleError("manifest field config: expected strings")
    initrd_raw = body.get("initrd")
    created = body.get("created", 0.0)
    known = {"format", "name", "version", "created", "type", "kernel", "initrd", "rootfs", "config"}
    return CapsuleManifest(
        name=_get(body, "name", str, ""),
        version=_size(body, "version", ""),
        created=float(created) if isinstance(created, int | float) and not isinstance(created, bool) else 0.0,
        type=kind,
        kernel=_blob(body.get("kernel"), "kernel"),
        initrd=None if initrd_raw is None else _blob(initrd_raw, "initrd"),
        rootfs=rootfs,
        layout=layout,
        chunk_size=_size(rootfs_raw, "chunk_size", "rootfs.", MAX_CHUNK_RAW),
        kexec_args=strings["kexec_args"],
        kernel_args=strings["kernel_args"],
        console=strings["console"],
        format=fmt,
        data=bytes(data),
        hash=actual,
        extra={k: v for k, v in body.items() if k not in known},
    )


def verify_chunk(ref: ChunkRef, data: bytes | memoryview) -> bool:
    """True when `data` is exactly the chunk `ref` names (size first: it is free)."""
    return len(data) == ref.size and digest(data) == ref.hash


REUSE_CMDLINE = "--reuse-cmdline"
# Stage one's own words that must not follow a `--reuse-cmdline` into the runtime kernel.
_NOT_REUSED = ("initrd=", "BOOT_IMAGE=", "rdinit=", "perceus.")


def kernel_cmdline(manifest: CapsuleManifest, extra: Sequence[str] = (), current: str | None = None) -> str:
    """KERNEL_ARGS with CONSOLE appended (as the original's configure did) plus `extra` words.

    With KEXEC_ARGS `--reuse-cmdline` (the master keeps only that word in the manifest) the running kernel's
    command line (`current`, default /proc/cmdline) adds every key the capsule does not set itself."""
    if REUSE_CMDLINE in manifest.kexec_args.split():
        if current is None:
            try:
                with open("/proc/cmdline", encoding="utf-8", errors="replace") as fh:
                    current = fh.read()
            except OSError:
                current = ""
        extra = (*extra, *(w for w in current.split() if not w.startswith(_NOT_REUSED)))
    words = manifest.kernel_args.split()
    if manifest.console:
        words = [w for w in words if not w.startswith("console=")]
        words.extend(f"console={c}" for c in manifest.console.split())
    for word in extra:
        key = word.split("=", 1)[0] + "="
        if not any(w.startswith(key) for w in words):
            words.append(word)
    return " ".join(words)
