"""What perceus-bus asks the capsule store: the current manifest hash of a capsule, and manifests by hash.

Read on demand and cached by the manifest file's (mtime, size), so a `perceus vnfs umount` is seen by the
next `hello` without a restart or a control poke.
"""

from __future__ import annotations

import os

from perceus.errors import CapsuleError
from perceus.master.capsule.layout import Store
from perceus.master.capsule.variants import Variants
from perceus.master.config import Paths
from perceus.master.store.models import Node
from perceus.protocol.capsule import digest, is_hash


class CapsuleStoreIndex:
    """Implements handlers.CapsuleIndex for the Dispatcher."""

    def __init__(self, paths: Paths) -> None:
        self.store = Store(paths)
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}
        self.variants = Variants(paths)

    def manifest_hash(self, name: str) -> str | None:
        """The current manifest hash of capsule `name`, or None when it does not exist / was never packed."""
        try:
            path = self.store.capsule(name).manifest
        except CapsuleError:
            return None
        try:
            st = os.stat(path)
        except OSError:
            self._cache.pop(name, None)
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            data = path.read_bytes()
        except OSError:
            return None
        h = digest(data)
        self._cache[name] = (stamp, h)
        return h

    def manifest_for(self, node: Node) -> str | None:
        """The manifest hash `node` gets: its capsule's, or the per-node/group variant (capsule/variants.py)."""
        base = self.manifest_hash(node.vnfs) if node.vnfs else None
        return self.variants.manifest_for(node, base) if base else base

    def manifest_bytes(self, ref: str) -> tuple[str, bytes] | None:
        """(hash, bytes) of a manifest named by hash (content-addressed) or by capsule name (current)."""
        if is_hash(ref):
            try:
                data = self.store.manifest_path(ref).read_bytes()
            except OSError:
                return None
            return (ref, data) if digest(data) == ref else None
        h = self.manifest_hash(ref)
        return self.manifest_bytes(h) if h is not None else None
