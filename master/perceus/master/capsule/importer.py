"""Import and clone: build a capsule in `<state>/vnfs/.tmp-*`, pack it, and rename it into place last.

A failed import leaves nothing: the temp tree is removed, and chunk and manifest files this build created
are deleted again (chunks that already existed are shared and stay).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from perceus.errors import AlreadyExistsError, CapsuleError
from perceus.master.capsule import hybrid
from perceus.master.capsule.chunkstore import ChunkStore
from perceus.master.capsule.config import CapsuleConfig, new_config
from perceus.master.capsule.extract import Extractor, Limits
from perceus.master.capsule.layout import TMP_PREFIX, CapsuleDir, Store, check_name
from perceus.master.capsule.pack import PackResult, ProgressFactory, find_initrd, find_kernel, pack
from perceus.master.capsule.sources import Source, detect
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write

log = structlog.get_logger("perceus.capsule")

_SUFFIXES = (".vnfs", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.bz2", ".tar.xz", ".tar", ".oci")


@dataclass(frozen=True)
class Settings:
    """Config values given on the command line (None = keep / default)."""

    type: str | None = None
    console: str | None = None
    kernel_args: str | None = None
    kexec_args: str | None = None
    hybridize: Path | None = None  # a hybridize list to store as the capsule's own (capsule/hybrid.py)

    def apply(self, cfg: CapsuleConfig) -> bool:
        changed = False
        for key, value in (
            ("TYPE", self.type),
            ("CONSOLE", self.console),
            ("KERNEL_ARGS", self.kernel_args),
            ("KEXEC_ARGS", self.kexec_args),
        ):
            if value is not None and cfg.values.get(key) != value:
                cfg.set(key, value)
                changed = True
        if self.type is not None:
            _ = cfg.type  # validates
        return changed

    def store_hybridize(self, cap: CapsuleDir, text: str | None = None) -> bool:
        """Write the `--hybridize FILE` list (else `text`, a 1.x capsule's own) as the capsule's list."""
        if self.hybridize is not None:
            try:
                text = self.hybridize.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise CapsuleError(f"{self.hybridize}: cannot read the hybridize list: {exc.strerror}") from None
        if text is None:
            return False
        old = cap.root / hybrid.LIST_FILE
        if old.is_file() and old.read_text(encoding="utf-8", errors="replace") == text:
            return False
        atomic_write(old, text.encode(), mode=0o644)
        return True


@dataclass(frozen=True)
class ImportResult:
    name: str
    source: Source
    packed: PackResult
    files: int
    skipped_devices: int


def default_name(src: Path) -> str:
    base = src.name
    for suffix in _SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


class _Build:
    """A capsule under construction in a temp dir; `commit` renames it into place, failure undoes all."""

    def __init__(self, store: Store, name: str) -> None:
        store.ensure()
        self.store = store
        self.name = check_name(name)
        self.final = store.capsule(name)
        if self.final.root.exists():
            raise AlreadyExistsError("VNFS", name)
        self.tmp = CapsuleDir(Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=store.vnfs)))
        self.tmp.rootfs.mkdir()
        self.chunks = ChunkStore(store)
        self.manifest_created: Path | None = None

    def pack(self, progress: ProgressFactory | None) -> PackResult:
        result = pack(self.store, self.tmp, name=self.name, chunks=self.chunks, progress=progress)
        path = self.store.manifest_path(result.manifest.hash)
        self.manifest_created = path
        return result

    def commit(self) -> None:
        try:
            os.rename(self.tmp.root, self.final.root)
        except OSError as exc:
            if self.final.root.exists():
                raise AlreadyExistsError("VNFS", self.name, "created meanwhile") from None
            raise CapsuleError(f"cannot move capsule into place: {exc.strerror}") from None

    def abort(self) -> None:
        shutil.rmtree(self.tmp.root, ignore_errors=True)
        self.chunks.discard_written()
        if self.manifest_created is not None:
            self.manifest_created.unlink(missing_ok=True)


def import_capsule(
    paths: Paths,
    src: Path,
    *,
    name: str | None = None,
    kind: str | None = None,
    settings: Settings = Settings(),
    kernel: Path | None = None,
    progress: ProgressFactory | None = None,
    with_provisiond: bool = True,
    limits: Limits | None = None,
) -> ImportResult:
    """Import `src` (chroot dir, tar, .vnfs, image archive) as capsule `name` and pack it.

    A systemd-based root with Python 3 but no Perceus agent gets provisiond installed (`with_provisiond`),
    so its nodes check in after kexec; other roots (busybox runtimes, 1.x capsules) are left as they are.
    """
    store = Store(paths)
    name = name or default_name(src)
    source = detect(src, kind)
    build = _Build(store, name)
    try:
        archive = src.stat().st_size if src.is_file() else 0  # the ratio cap applies to archives only
        with Extractor(build.tmp.rootfs, source=str(src), limits=limits, source_bytes=archive) as ex:
            source.feed(ex)
        if source.config_text is not None:
            cfg = CapsuleConfig.parse(source.config_text, f"{src}:config")
        else:
            cfg = new_config(kind=settings.type or "stateless", kernel="")
        if kernel is not None:
            if not kernel.is_file():
                raise CapsuleError(f"{kernel}: kernel file does not exist")  # noqa: TRY301 - the except below cleans up
            (build.tmp.rootfs / "boot").mkdir(exist_ok=True)
            shutil.copyfile(kernel, build.tmp.rootfs / "boot" / kernel.name)
            cfg.set("KERNEL", f"/boot/{kernel.name}")
        if not cfg.kernel:
            found = find_kernel(build.tmp.rootfs)
            if not found:
                raise CapsuleError(f"{src}: no kernel found (/boot/vmlinuz*); give one with --kernel FILE")  # noqa: TRY301 - the except below cleans up
            cfg.set("KERNEL", found)
        settings.apply(cfg)
        settings.store_hybridize(build.tmp, source.hybridize_text)
        if cfg.type != "hybrid" and (build.tmp.root / hybrid.LIST_FILE).is_file():
            source.notes.append(f"hybridize list kept but not applied: the capsule is {cfg.type} "
                                "(vnfs configure --type hybrid applies it)")  # fmt: skip
        if with_provisiond and _wants_provisiond(build.tmp.rootfs):
            from perceus.master.capsule.agent_install import install_provisiond

            log.info("provisiond_installing", capsule=name)
            install_provisiond(build.tmp.rootfs)
        if cfg.type == "stateful" and not cfg.initrd:
            initrd = find_initrd(build.tmp.rootfs, cfg.kernel)
            if initrd:
                cfg.set("INITRD", initrd)
        cfg.save(build.tmp.config)
        result = build.pack(progress)
        build.commit()
    except BaseException:
        build.abort()
        raise
    log.info(
        "capsule_imported",
        capsule=name,
        source=str(src),
        kind=source.kind,
        files=ex.count,
        skipped_devices=ex.skipped_devices,
        manifest=result.manifest.hash[:16],
    )
    return ImportResult(name, source, result, ex.count, ex.skipped_devices)


def _wants_provisiond(root: Path) -> bool:
    has_systemd = any((root / p).exists() for p in ("lib/systemd/systemd", "usr/lib/systemd/systemd"))
    has_python = any((root / p).exists() for p in ("usr/bin/python3",))
    has_agent = (root / "usr/local/lib/perceus/perceus/agent").exists() or any(
        root.glob("usr/lib/python3*/**/perceus/agent/__init__.py")
    )
    return has_systemd and has_python and not has_agent


def clone_capsule(paths: Paths, src_name: str, dst_name: str, *, progress: ProgressFactory | None = None) -> PackResult:
    """Copy a capsule's config and tree under a new name; every chunk is shared, only a manifest is new."""
    store = Store(paths)
    src = store.existing(src_name)
    build = _Build(store, dst_name)
    try:
        source = Source("dir", src.root)
        with Extractor(build.tmp.rootfs, source=f"VNFS {src_name}") as ex:
            source.feed(ex)
        shutil.copyfile(src.config, build.tmp.config)
        if (src.root / hybrid.LIST_FILE).is_file():
            shutil.copyfile(src.root / hybrid.LIST_FILE, build.tmp.root / hybrid.LIST_FILE)
        if src.chunkmap.exists():
            shutil.copyfile(src.chunkmap, build.tmp.chunkmap)
        result = build.pack(progress)
        build.commit()
    except BaseException:
        build.abort()
        raise
    log.info("capsule_cloned", capsule=dst_name, source=src_name, manifest=result.manifest.hash[:16])
    return result
