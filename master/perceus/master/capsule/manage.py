"""Capsule life cycle after import: list, mount/umount/rebuild, configure, delete (+ garbage collection)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import CapsuleError, ConflictError
from perceus.master.capsule import hybrid
from perceus.master.capsule.chunkstore import ChunkStore
from perceus.master.capsule.config import GLOBAL_OVERRIDE, CapsuleConfig, scoped_overrides
from perceus.master.capsule.importer import Settings
from perceus.master.capsule.layout import TMP_PREFIX, CapsuleDir, Store
from perceus.master.capsule.pack import PackResult, ProgressFactory, current, history, pack
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.protocol.capsule import decode_manifest, is_hash

log = structlog.get_logger("perceus.capsule")

KEEP_VERSIONS = 3  # manifests (and their chunks) kept per capsule for rollback
GC_GRACE = 3600.0  # an unreferenced chunk younger than this may belong to an import in progress


@dataclass(frozen=True)
class Info:
    """One row of `perceus vnfs list`."""

    name: str
    type: str
    version: int
    kernel: str
    raw_size: int
    packed_size: int
    chunks: int
    mounted: bool
    manifest: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def info(paths: Paths, name: str) -> Info:
    store = Store(paths)
    cap = store.existing(name)
    cfg = CapsuleConfig.load(cap.config)
    m = current(cap)
    return Info(
        name=name,
        type=cfg.type,
        version=m.version if m else 0,
        kernel=os.path.basename(cfg.kernel),
        raw_size=m.rootfs.size if m else 0,
        packed_size=m.packed_size if m else 0,
        chunks=len(m.all_chunks()) if m else 0,
        mounted=cap.is_mounted(),
        manifest=m.hash if m else "",
    )


def infos(paths: Paths) -> list[Info]:
    return [info(paths, n) for n in Store(paths).names()]


# ---------------------------------------------------------------------------------------------- mount


def mount(paths: Paths, name: str, link_dir: Path | None) -> Path:
    """Mark the capsule editable; with `link_dir`, make `<link_dir>/<name>` → rootfs as 1.x did in /mnt."""
    cap = Store(paths).existing(name)
    if cap.is_mounted():
        raise ConflictError(f"VNFS {name!r} is already mounted")
    link = ""
    if link_dir is not None:
        path = link_dir / name
        if path.is_symlink() or path.exists():
            raise ConflictError(f"{path} exists; remove it before mounting VNFS {name!r}")
        os.symlink(cap.rootfs, path)
        link = str(path)
    atomic_write(cap.mounted, f"{link}\n".encode(), mode=0o644)
    log.info("capsule_mounted", capsule=name, link=link)
    return link_dir / name if link_dir is not None else cap.rootfs


def _unlink_mount(cap: CapsuleDir) -> None:
    link = cap.mounted.read_text(encoding="utf-8").strip()
    if link and os.path.islink(link) and os.readlink(link) == str(cap.rootfs):
        os.unlink(link)
    cap.mounted.unlink()


def umount(
    paths: Paths, name: str, *, progress: ProgressFactory | None = None, rebuild: bool = True
) -> PackResult | None:
    """Repack what changed (unless `rebuild` is False: 1.x's `close`) and drop the mount mark."""
    store = Store(paths)
    cap = store.existing(name)
    if not cap.is_mounted():
        raise ConflictError(f"VNFS {name!r} is not mounted")
    result = pack(store, cap, progress=progress) if rebuild else None
    _unlink_mount(cap)
    log.info("capsule_unmounted", capsule=name, changed=bool(result and result.changed))
    return result


def rebuild(paths: Paths, name: str, *, progress: ProgressFactory | None = None) -> PackResult:
    """Repack from scratch: every chunk recompressed and any damaged chunk file rewritten."""
    store = Store(paths)
    cap = store.existing(name)
    if cap.is_mounted():
        raise ConflictError(f"VNFS {name!r} is mounted; umount it (which repacks) instead")
    return pack(store, cap, chunks=ChunkStore(store, repair=True), use_cache=False, progress=progress)


def kernel_for(cap: CapsuleDir, version: str) -> tuple[str, str]:
    """(KERNEL, INITRD or "") for `version` (`6.1.0-28-amd64` → /boot/vmlinuz-6.1.0-28-amd64) or a path."""
    boot = cap.rootfs / "boot"
    if version.startswith("/"):
        candidates = [version]
    else:
        candidates = [f"/boot/vmlinuz-{version}", f"/boot/vmlinux-{version}", f"/boot/{version}"]
    for rel in candidates:
        if (cap.rootfs / rel.lstrip("/")).is_file():
            base = os.path.basename(rel)
            ver = base.split("-", 1)[1] if "-" in base else ""
            initrd = next((f"/boot/{n}" for n in (f"initrd.img-{ver}", f"initramfs-{ver}.img") if ver and
                           (boot / n).is_file()), "")  # fmt: skip
            return rel, initrd
    have = sorted(p.name.split("-", 1)[1] for p in boot.glob("vmlinu[xz]-*")) if boot.is_dir() else []
    raise CapsuleError(f"VNFS {cap.name!r} has no kernel {version!r} in /boot (installed: {', '.join(have) or 'none'})")


def configure(
    paths: Paths,
    name: str,
    settings: Settings,
    *,
    kernel: str | None = None,
    progress: ProgressFactory | None = None,
) -> PackResult | None:
    """Change config keys and record a new manifest version (the config travels in the manifest)."""
    store = Store(paths)
    cap = store.existing(name)
    if cap.is_mounted():
        raise ConflictError(f"VNFS {name!r} is mounted; umount it first")
    cfg = CapsuleConfig.load(cap.config)
    changed = settings.apply(cfg)
    if kernel is not None:
        path, initrd = kernel_for(cap, kernel)
        if cfg.kernel != path:
            cfg.set("KERNEL", path)
            changed = True
        if initrd and cfg.type == "stateful" and cfg.initrd != initrd:
            cfg.set("INITRD", initrd)
            changed = True
    list_file = cap.root / hybrid.LIST_FILE
    old_list = list_file.read_bytes() if list_file.is_file() else None
    changed = settings.store_hybridize(cap) or changed
    if not changed:
        return None
    old = cap.config.read_bytes()
    cfg.save(cap.config)
    try:
        return pack(store, cap, progress=progress)
    except BaseException:
        atomic_write(cap.config, old)
        if old_list is None:
            list_file.unlink(missing_ok=True)
        else:
            atomic_write(list_file, old_list)
        raise


def boot_notes(paths: Paths, name: str) -> list[str]:
    """What `vnfs show` / import / configure say about how the capsule's 1.x settings are applied."""
    cfg = CapsuleConfig.load(Store(paths).existing(name).config)
    override = paths.config_dir / GLOBAL_OVERRIDE
    notes: list[str] = []
    if override.is_file():
        notes.append(f"{override} applies (its assignments override this capsule's config)")
    notes += cfg.merged(paths.config_dir).kexec().notes()
    notes += [f"{p} applies to its node/group (a signed manifest variant; KERNEL_ARGS, KEXEC_ARGS and CONSOLE "
              "only)" for p in scoped_overrides(paths.config_dir)]  # fmt: skip
    return notes


# ---------------------------------------------------------------------------------------------- delete / gc


def delete(paths: Paths, name: str) -> int:
    """Remove the capsule (atomically: renamed away first) and collect chunks nobody uses; returns bytes freed."""
    store = Store(paths)
    cap = store.existing(name)
    if cap.is_mounted():
        _unlink_mount(cap)
    trash = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "del-", dir=store.vnfs))
    os.rename(cap.root, trash / name)
    shutil.rmtree(trash, ignore_errors=True)
    freed = gc(paths)
    log.info("capsule_deleted", capsule=name, freed_bytes=freed)
    return freed


def gc(paths: Paths, *, keep: int = KEEP_VERSIONS, now: float | None = None) -> int:
    """Delete manifests beyond the last `keep` versions of each capsule and chunks no kept manifest uses."""
    store = Store(paths)
    now = time.time() if now is None else now
    keep_manifests: set[str] = set()
    keep_chunks: set[str] = set()
    for n in store.names():
        cap = store.capsule(n)
        hashes = [h for _, h, _ in history(cap)][-keep:]
        m = current(cap)
        if m is not None:
            hashes.append(m.hash)
        for h in hashes:
            try:
                manifest = decode_manifest(store.manifest_path(h).read_bytes(), h)
            except (OSError, CapsuleError):
                continue
            keep_manifests.add(h)
            keep_chunks.update(c.hash for c in manifest.all_chunks())
    # An import running right now has chunks (and soon a manifest) no capsule names yet: while a build
    # dir exists, leave young files alone (the next gc takes them).
    building = (
        any(p.name.startswith(TMP_PREFIX) and not p.name.startswith(TMP_PREFIX + "del-") for p in store.vnfs.iterdir())
        if store.vnfs.is_dir()
        else False
    )

    def young(st: os.stat_result) -> bool:
        return building and now - st.st_mtime < GC_GRACE

    freed = 0
    if store.manifests.is_dir():
        for p in store.manifests.iterdir():
            if is_hash(p.name) and p.name not in keep_manifests and not young(p.stat()):
                p.unlink(missing_ok=True)
    if store.chunks.is_dir():
        for sub in store.chunks.iterdir():
            for p in sub.iterdir() if sub.is_dir() else ():
                if not is_hash(p.name) or p.name in keep_chunks:
                    continue
                st = p.stat()
                if young(st):
                    continue
                p.unlink(missing_ok=True)
                freed += st.st_size
    return freed
