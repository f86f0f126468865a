"""Build (or reuse) the stage-one kernel + initramfs, keyed by a hash of every input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import structlog

from perceus.stage1 import agentsrc, busybox, kernel, modules, pyruntime, wheels
from perceus.stage1.atomic import prune_cache, publish_dir
from perceus.stage1.cachekey import cache_key, dir_digest, host_package_versions, tree_digest
from perceus.stage1.layout import skeleton, write_etc
from perceus.stage1.pack import pack, sha256_file
from perceus.stage1.run import BuildError

KERNEL_NAME = "vmlinuz"
INITRD_NAME = "stage1.cpio.zst"
MANIFEST_NAME = "stage1.json"
_BUILDER_DIR = Path(__file__).parent


class Progress(Protocol):
    """Receives one event per build step (``event`` is a snake_case fact, context in keys)."""

    def __call__(self, event: str, **fields: Any) -> None: ...


def _log_progress(event: str, **fields: Any) -> None:
    structlog.get_logger("perceus.stage1").info(event, **fields)


@dataclass(frozen=True)
class BuildResult:
    """Where the image is and what it is; ``cached`` says no build step ran."""

    out_dir: Path
    kernel: Path
    initrd: Path
    manifest: Path
    key: str
    kernel_release: str
    initrd_size: int
    cached: bool
    seconds: float

    @classmethod
    def from_manifest(cls, out_dir: Path, manifest: dict[str, Any], *, cached: bool, seconds: float) -> BuildResult:
        return cls(
            out_dir=out_dir,
            kernel=out_dir / KERNEL_NAME,
            initrd=out_dir / INITRD_NAME,
            manifest=out_dir / MANIFEST_NAME,
            key=manifest["key"],
            kernel_release=manifest["kernel"]["release"],
            initrd_size=manifest["initrd"]["size"],
            cached=cached,
            seconds=seconds,
        )


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/perceus`` or ``~/.cache/perceus``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perceus"


def builder_files() -> list[Path]:
    """The builder's own sources (relative), part of the cache key."""
    return sorted(
        p.relative_to(_BUILDER_DIR)
        for p in _BUILDER_DIR.iterdir()
        if p.is_file() and (p.suffix == ".py" or p.name == "init")
    )


@dataclass(frozen=True)
class Plan:
    """One build's resolved inputs and its content hash."""

    level: int
    kpkg: kernel.KernelPackage
    agent_dir: Path
    extra_files: Mapping[str, bytes]
    cache: Path  # <cache>/stage1
    key: str = ""


def collect_inputs(plan: Plan) -> dict[str, object]:
    """Everything that determines the image bytes, as JSON-able data."""
    return {
        "level": plan.level,
        "kernel": [plan.kpkg.name, plan.kpkg.version],
        "host_packages": host_package_versions(),
        "python": pyruntime.interpreter_version(),
        "wheels": list(wheels.PINS),
        "builder": dir_digest(_BUILDER_DIR, builder_files()),
        "agent": dir_digest(plan.agent_dir, agentsrc.source_files(plan.agent_dir)),
        "extra_files": tree_digest(plan.extra_files.items()),
    }


def check_extra_files(extra_files: Mapping[str, bytes]) -> None:
    """Extra files must be plain relative paths (they are written below the image root)."""
    for name in extra_files:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or name == "init":
            raise BuildError("extra files", f"{name!r} is not a relative path inside the image (or is /init)")


def _load_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _complete(directory: Path, key: str) -> dict[str, Any] | None:
    """The manifest of ``directory`` if it holds a finished image for ``key``."""
    manifest = _load_manifest(directory / MANIFEST_NAME)
    if manifest is None or manifest.get("key") != key:
        return None
    for name, section in ((KERNEL_NAME, "kernel"), (INITRD_NAME, "initrd")):
        path = directory / name
        if not path.is_file() or path.stat().st_size != manifest[section]["size"]:
            return None
    return manifest


def _publish(src: Path, out_dir: Path) -> None:
    """Copy an image into ``out_dir``; each file via temp + rename, the manifest last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (KERNEL_NAME, INITRD_NAME, MANIFEST_NAME):
        tmp = out_dir / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(src / name, tmp)
        tmp.replace(out_dir / name)


def _assemble(
    root: Path, tree: kernel.KernelTree, site: Path, plan: Plan, info: dict[str, object], progress: Progress
) -> dict[str, object]:
    t = time.monotonic()
    skeleton(root)
    applets = busybox.install(root)
    elfs = pyruntime.install_interpreter(root) + pyruntime.install_extra_binaries(root)
    site_dst = root / agentsrc.SITE
    shutil.copytree(site, site_dst, symlinks=True, dirs_exist_ok=True)
    (site_dst / ".perceus-installed").unlink(missing_ok=True)
    elfs += sorted(p for p in site_dst.rglob("*.so*") if p.is_file() and not p.is_symlink())
    libs = pyruntime.install_shared_libs(root, elfs)
    pyruntime.install_ldconfig(root)
    agent_files = agentsrc.install(root, plan.agent_dir)
    wheels.compile_tree(site_dst / "perceus", f"/{agentsrc.SITE}/perceus")
    nmods = modules.install(tree, root)
    write_etc(root, info)
    for name, data in sorted(plan.extra_files.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    stats: dict[str, object] = {
        "applets": applets,
        "shared_libs": len(libs),
        "agent_files": agent_files,
        "modules": nmods,
        "extra_files": sorted(plan.extra_files),
    }
    progress("stage1_tree_assembled", duration_ms=round((time.monotonic() - t) * 1000), **stats)
    return stats


def _build_into(image_dir: Path, work: Path, plan: Plan, progress: Progress) -> dict[str, Any]:
    key, level, kpkg = plan.key, plan.level, plan.kpkg
    t = time.monotonic()
    tree = kernel.fetch(kpkg, plan.cache)
    progress("kernel_ready", package=kpkg.name, version=kpkg.version, release=tree.release,
             duration_ms=round((time.monotonic() - t) * 1000))  # fmt: skip
    t = time.monotonic()
    site = wheels.install(plan.cache, pyruntime.interpreter_version())
    progress("wheels_ready", count=len(wheels.PINS), duration_ms=round((time.monotonic() - t) * 1000))
    info: dict[str, object] = {"key": key, "kernel_release": tree.release, "kernel_package": kpkg.name,
                               "kernel_version": kpkg.version, "wheels": list(wheels.PINS)}  # fmt: skip
    root = work / "root"
    root.mkdir()
    stats = _assemble(root, tree, site, plan, info, progress)
    t = time.monotonic()
    packed = pack(root, work / INITRD_NAME, level=level)
    progress("initramfs_packed", level=level, size=packed.size, unpacked_size=packed.unpacked_size,
             entries=packed.entries, duration_ms=round((time.monotonic() - t) * 1000))  # fmt: skip
    shutil.copyfile(tree.vmlinuz, work / KERNEL_NAME)
    manifest: dict[str, Any] = {
        "format": 1,
        "key": key,
        "kernel": {
            "release": tree.release,
            "package": kpkg.name,
            "version": kpkg.version,
            "size": (work / KERNEL_NAME).stat().st_size,
            "sha256": sha256_file(work / KERNEL_NAME),
        },
        "initrd": {
            "size": packed.size,
            "sha256": sha256_file(work / INITRD_NAME),
            "unpacked_size": packed.unpacked_size,
            "entries": packed.entries,
            "compression": "zstd",
            "level": level,
        },
        "python": pyruntime.interpreter_version().split()[0],
        "wheels": list(wheels.PINS),
        "contents": stats,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (work / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    image_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=image_dir.parent, prefix=f".{key}-"))
    for name in (KERNEL_NAME, INITRD_NAME, MANIFEST_NAME):
        shutil.move(work / name, staging / name)
    publish_dir(staging, image_dir, complete=Path(MANIFEST_NAME))
    return manifest


def build(
    out_dir: Path,
    *,
    level: int = 3,
    cache_dir: Path | None = None,
    progress: Progress = _log_progress,
    extra_files: Mapping[str, bytes] | None = None,
) -> BuildResult:
    """Make ``out_dir`` hold vmlinuz, stage1.cpio.zst and stage1.json for the current inputs.

    ``extra_files`` maps image paths to contents, e.g. ``{"etc/perceus/master.pub": key}``
    to bake the master's bus key into the image; they are part of the content hash.
    Nothing is rebuilt when ``out_dir`` or the image cache already has an image with
    the same hash.  Needs apt (kernel download) and root or user namespaces (ldconfig -r).
    """
    start = time.monotonic()
    extra = dict(extra_files or {})
    check_extra_files(extra)
    cache = (cache_dir or default_cache_dir()) / "stage1"
    out_dir = Path(out_dir)
    plan = Plan(level, kernel.resolve(), agentsrc.source_dir(), extra, cache)
    plan = dataclasses.replace(plan, key=cache_key(collect_inputs(plan)))
    key = plan.key
    progress("stage1_inputs_hashed", key=key, kernel=plan.kpkg.name,
             duration_ms=round((time.monotonic() - start) * 1000))  # fmt: skip

    if (manifest := _complete(out_dir, key)) is not None:
        progress("stage1_up_to_date", out=str(out_dir), key=key)
        return BuildResult.from_manifest(out_dir, manifest, cached=True, seconds=time.monotonic() - start)

    image_dir = cache / "images" / key
    cached = (manifest := _complete(image_dir, key)) is not None
    if manifest is None:
        progress("stage1_build_started", key=key, level=level)
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
            manifest = _build_into(image_dir, Path(tmp), plan, progress)
        protected = {
            "images": image_dir,
            "kernel": kernel.tree_dir(plan.kpkg, cache),
            "wheels": wheels.site_dir(cache, pyruntime.interpreter_version()),
        }
        for sub, keep_dir in protected.items():
            for old in prune_cache(cache / sub, keep=2, protect=keep_dir):
                progress("stage1_cache_pruned", path=str(old))
    _publish(image_dir, out_dir)
    seconds = time.monotonic() - start
    progress("stage1_ready", out=str(out_dir), key=key, initrd_size=manifest["initrd"]["size"],
             from_cache=cached, duration_ms=round(seconds * 1000))  # fmt: skip
    return BuildResult.from_manifest(out_dir, manifest, cached=cached, seconds=seconds)
