"""Pack a capsule's tree into chunks and a new manifest version (only when something changed).

The tree is re-read on every pack (reading is cheap next to compressing); chunks whose raw bytes were packed
before are not compressed again (chunkmap), and identical chunks are stored once across all capsules.
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from perceus.errors import CapsuleError
from perceus.master.capsule import chunker, cpio, hybrid
from perceus.master.capsule.chunkstore import ChunkStore, chunkmap_bytes, load_chunkmap
from perceus.master.capsule.config import STATEFUL_KEYS, CapsuleConfig
from perceus.master.capsule.layout import CapsuleDir, Store
from perceus.master.fsutil import atomic_write
from perceus.master.security.signing import sign_manifest
from perceus.protocol.capsule import Blob, CapsuleManifest, decode_manifest, digest, encode_manifest

log = structlog.get_logger("perceus.capsule")

ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class PackResult:
    """What a pack produced: the current manifest and whether it is new."""

    manifest: CapsuleManifest
    changed: bool
    new_chunks: int
    seconds: float


def resolve_inside(root: Path, path: str) -> Path:
    """Resolve `path` as the node would see it with `root` as `/` (symlinks followed, never out of root)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise CapsuleError(f"{path}: too many levels of symbolic links in the capsule")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def _version_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in __import__("re").split(r"(\d+)", name)]


def find_kernel(rootfs: Path) -> str:
    """The newest `/boot/vmlinuz*` (what chroot2stateless.sh picked), as a path inside the capsule."""
    boot = rootfs / "boot"
    names = sorted((p.name for p in boot.glob("vmlinuz*") if p.is_file()), key=_version_key) if boot.is_dir() else []
    return f"/boot/{names[-1]}" if names else ""


def find_initrd(rootfs: Path, kernel: str) -> str:
    """The initrd matching the kernel version (`initrd.img-<ver>`), for stateful capsules."""
    version = posixpath.basename(kernel).removeprefix("vmlinuz").lstrip("-")
    for name in (f"initrd.img-{version}", f"initrd-{version}.img", f"initramfs-{version}.img"):
        if version and (rootfs / "boot" / name).is_file():
            return f"/boot/{name}"
    return ""


def _file(rootfs: Path, inside: str, what: str) -> Path:
    path = resolve_inside(rootfs, inside)
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise CapsuleError(f"{what} {inside} does not exist in the capsule") from None
    if not stat.S_ISREG(st.st_mode):
        raise CapsuleError(f"{what} {inside} is not a regular file")
    return path


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size + 120
    return total


def current(cap: CapsuleDir) -> CapsuleManifest | None:
    """The capsule's current manifest, verified against itself (None before the first pack)."""
    try:
        data = cap.manifest.read_bytes()
    except FileNotFoundError:
        return None
    return decode_manifest(data)


def pack(
    store: Store,
    cap: CapsuleDir,
    *,
    name: str | None = None,
    chunk_size: int = chunker.DEFAULT_CHUNK,
    chunks: ChunkStore | None = None,
    use_cache: bool = True,
    progress: ProgressFactory | None = None,
) -> PackResult:
    """Pack `cap` (possibly a temp dir, then `name` is the final name) and record a new version if changed."""
    started = time.monotonic()
    name = name or cap.name
    store.ensure()
    cfg = CapsuleConfig.load(cap.config).effective(store.paths.config_dir)  # global-vnfs.config, KEXEC_ARGS
    kind = cfg.type
    if not cap.rootfs.is_dir():
        raise CapsuleError(f"capsule {name!r} has no rootfs/ directory")
    kernel_inside = cfg.kernel or find_kernel(cap.rootfs)
    if not kernel_inside:
        raise CapsuleError(f"capsule {name!r} has no kernel: set KERNEL or install one as /boot/vmlinuz*")
    kernel_path = _file(cap.rootfs, kernel_inside, "kernel")
    initrd_path = _file(cap.rootfs, cfg.initrd, "initrd") if cfg.initrd else None
    cs = chunks or ChunkStore(store)
    cache = load_chunkmap(cap.chunkmap) if use_cache else {}
    before = len(cs.written)

    def bar(label: str, total: int) -> Callable[[int], None] | None:
        return progress(label, total) if progress is not None else None

    kernel = cs.pack(
        chunker.file_chunks(kernel_path, size=chunk_size), cache, bar("kernel", kernel_path.stat().st_size)
    )
    initrd: Blob | None = None
    if initrd_path is not None:
        initrd = cs.pack(
            chunker.file_chunks(initrd_path, size=chunk_size),
            cache,
            bar("initrd", initrd_path.stat().st_size),
        )
    # A hybrid capsule's hybridize list is read and checked at every pack (1.x: "on the next umount/rebuild").
    plan = hybrid.plan_for(store.paths.config_dir, cap, cfg, name) if kind == "hybrid" else None
    stream = cpio.entries(cap.rootfs)
    if plan is not None:
        stream = hybrid.image_entries(stream, plan, cap.rootfs)
    rootfs = cs.pack(chunker.chunks(stream, size=chunk_size), cache, bar("rootfs", tree_size(cap.rootfs)))
    if plan is not None:
        hybrid.write_export(cap, plan)
    elif hybrid.export_dir(cap).exists():
        hybrid.drop_export(cap)
    prev = current(cap) if cap.manifest.exists() else None

    def encode(version: int, created: float) -> bytes:
        return encode_manifest(
            name=name,
            version=version,
            created=created,
            type=kind,
            kernel=kernel,
            initrd=initrd,
            rootfs=rootfs,
            chunk_size=chunk_size,
            kexec_args=cfg.kexec_args,
            kernel_args=cfg.kernel_args,
            console=cfg.console,
            # The stateful keys (1.x ref §2.7) travel in the signed manifest: the node's installer needs them.
            stateful={k.lower(): v for k, v in cfg.values.items() if k in STATEFUL_KEYS and v}
            if kind == "stateful"
            else None,
        )

    if prev is not None and prev.name == name and encode(prev.version, prev.created) == prev.data:
        new = len(cs.written) - before
        return PackResult(prev, False, new, time.monotonic() - started)
    data = encode((prev.version + 1) if prev is not None else 1, round(time.time(), 3))
    manifest = decode_manifest(data)
    record(store, cap, manifest)
    atomic_write(cap.chunkmap, chunkmap_bytes(cache, manifest.all_chunks()), mode=0o644)
    seconds = time.monotonic() - started
    new = len(cs.written) - before
    log.info(
        "capsule_packed",
        capsule=name,
        version=manifest.version,
        manifest=manifest.hash[:16],
        chunks=len(manifest.all_chunks()),
        new_chunks=new,
        raw_bytes=rootfs.size,
        packed_bytes=manifest.packed_size,
        duration_ms=round(seconds * 1000),
    )
    return PackResult(manifest, True, new, seconds)


def record(store: Store, cap: CapsuleDir, manifest: CapsuleManifest) -> None:
    """Make `manifest` the capsule's current version: content-addressed copy, pointer, history line."""
    assert digest(manifest.data) == manifest.hash
    atomic_write(store.manifest_path(manifest.hash), manifest.data, mode=0o444)
    # Signed before it becomes current, so no node is ever offered an unsigned version (issue 10).
    sign_manifest(store.paths, manifest.hash, manifest.data)
    atomic_write(cap.manifest, manifest.data, mode=0o644)
    with open(cap.history, "a", encoding="utf-8") as fh:
        fh.write(f"{manifest.version} {manifest.hash} {manifest.created}\n")
        fh.flush()
        os.fsync(fh.fileno())


def history(cap: CapsuleDir) -> list[tuple[int, str, float]]:
    """(version, manifest hash, created) of every recorded version, oldest first."""
    out: list[tuple[int, str, float]] = []
    try:
        lines = cap.history.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1], float(parts[2])))
    return out
