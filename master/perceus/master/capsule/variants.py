"""1.x's per-node and per-group `vnfs.config` overrides (1.x ref §2.7: global, then node, then group — the group
file wins) as manifest *variants*: the capsule's manifest with another `config` section, same chunks.

1.x sourced the files on the master each time node scripts ran.  Here a node with `<config>/nodes/<name>/
vnfs.config` or whose group has `<config>/groups/<group>/vnfs.config` is offered a variant: built on first
use, written content-addressed next to the capsule's manifests and signed like them, cached by the files'
stamps (an edit reaches the next boot without a repack).  Only the keys that live in the manifest's config
can differ per node — KERNEL_ARGS, KEXEC_ARGS (folded as for the capsule), CONSOLE; an override of KERNEL,
INITRD or TYPE would need other chunks: it is refused with an error log and the node gets the capsule as is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack
import structlog

from perceus.errors import PerceusError
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.capsule.layout import Store
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.master.security.signing import sign_manifest
from perceus.master.store.models import Node
from perceus.protocol.capsule import decode_manifest, digest

log = structlog.get_logger("perceus.capsule")

PER_NODE_KEYS = ("KERNEL_ARGS", "KEXEC_ARGS", "CONSOLE")
FIXED_KEYS = ("KERNEL", "INITRD", "TYPE")
MAX_CACHE = 4096


def override_files(paths: Paths, node: Node) -> list[Path]:
    """The node's, then its group's `vnfs.config` (the order 1.x sourced them: the group's wins)."""
    out = []
    for path in (
        paths.config_dir / "nodes" / node.hostname / "vnfs.config",
        paths.config_dir / "groups" / node.group / "vnfs.config",
    ):
        if path.is_file():
            out.append(path)
    return out


def _stamp(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


class Variants:
    """Manifest hash for a node: the capsule's, or its per-node/group variant."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.store = Store(paths)
        self._cache: dict[tuple[Any, ...], str] = {}
        self.built = 0

    def manifest_for(self, node: Node, base: str) -> str:
        """`base` (the capsule's current manifest hash) or the variant `node` gets."""
        if not base or not node.vnfs:
            return base
        try:
            files = override_files(self.paths, node)
            if not files:
                return base
            key = (base, node.vnfs, _stamp(files))
            hit = self._cache.get(key)
            if hit is not None and self.store.manifest_path(hit).exists():
                return hit
            h = self._build(node, base, files)
        except (PerceusError, OSError, ValueError) as exc:
            log.error("capsule_variant_failed", node=node.hostname, capsule=node.vnfs, error=str(exc))
            return base
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[key] = h
        return h

    def _build(self, node: Node, base: str, files: list[Path]) -> str:
        data = self.store.manifest_path(base).read_bytes()
        decode_manifest(data, base)  # the capsule's own manifest is verified before a variant is made of it
        own = CapsuleConfig.load(self.store.existing(node.vnfs).config).merged(self.paths.config_dir)
        values = dict(own.values)
        for path in files:
            over = CapsuleConfig.load(path).values
            fixed = [k for k in FIXED_KEYS if k in over and over[k] != values.get(k, "")]
            if fixed:
                raise PerceusError(f"{path}: {', '.join(fixed)} cannot differ per node or group (other chunks)")
            values.update(over)
        eff = CapsuleConfig(values).effective(None)
        if eff.initrd != own.effective(None).initrd:
            raise PerceusError(f"{files[-1]}: KEXEC_ARGS --initrd cannot differ per node or group (other chunks)")
        config = {
            "kexec_args": eff.kexec_args,
            "kernel_args": eff.kernel_args,
            "console": eff.console,
        }
        body = msgpack.unpackb(data, raw=False)
        if body.get("config") == config:
            return base
        body["config"] = config
        variant = msgpack.packb(body, use_bin_type=True)
        h = digest(variant)
        decode_manifest(variant, h)  # what the node will check
        path = self.store.manifest_path(h)
        if not path.exists():
            atomic_write(path, variant, mode=0o444)
        sign_manifest(self.paths, h, variant)
        self.built += 1
        log.info("capsule_variant_built", node=node.hostname, group=node.group, capsule=node.vnfs, manifest=h[:16],
                 base=base[:16], files=",".join(str(p) for p in files))  # fmt: skip
        return h
