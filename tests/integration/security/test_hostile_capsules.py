"""Capsule access follows assignment: an enrolled node gets its own capsule's manifest and chunks, never
another's (by name, by manifest hash or by chunk hash), each refusal audited; the chunk store is not
world-readable on the master.  Before issue 14 any enrolled node could fetch any capsule."""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Callable
from pathlib import Path

from tests.integration.security.hostile import MAC, audit_has, node_client, refused, stage1_hello

from perceus.lab.bus import RunningBus
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.capsule import CapsuleManifest
from perceus.protocol.messages import Chunk, GetChunks, GetManifest, Manifest, Welcome


def _capsule(paths: Paths, tmp_path: Path, name: str, seed: int) -> CapsuleManifest:
    rng = random.Random(seed)
    root = tmp_path / f"chroot-{name}"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(300_000))
    (root / "etc").mkdir()
    (root / "etc/data").write_bytes(rng.randbytes(1_000_000))
    import_capsule(paths, root, name=name)
    m = current(Store(paths).existing(name))
    assert m is not None
    return m


def test_a_node_gets_only_its_assigned_capsule(
    secure_bus: Callable[..., RunningBus], paths: Paths, tmp_path: Path
) -> None:
    bus = secure_bus("open")
    mine = _capsule(paths, tmp_path, "deb", 1)
    other = _capsule(paths, tmp_path, "secret", 2)
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=MAC, hostname="n0000", vnfs="deb"))
    theirs = [c.hash for c in other.all_chunks() if c.hash not in {m.hash for m in mine.all_chunks()}]
    assert theirs
    c = node_client(bus)
    try:
        welcome = c.request(stage1_hello())
        assert isinstance(welcome, Welcome) and welcome.capsule == mine.hash
        assert refused(c, GetManifest(node=MAC, capsule="secret"), "NOT_FOUND")
        assert refused(c, GetManifest(node=MAC, capsule=other.hash), "NOT_FOUND")
        assert refused(c, GetChunks(node=MAC, hashes=(theirs[0],)), "NOT_FOUND")
        got = c.request(GetManifest(node=MAC, capsule=mine.hash))
        assert isinstance(got, Manifest) and got.hash == mine.hash
        assert isinstance(c.request(GetManifest(node=MAC, capsule="deb")), Manifest)
        rid = c.send(GetChunks(node=MAC, hashes=(mine.all_chunks()[0].hash,)))
        reply, _ = c.receive(rid, 10)
        assert isinstance(reply, Chunk)
    finally:
        c.close()
    assert audit_has(paths, "refused_capsule_access")


def test_chunk_store_is_not_world_readable(paths: Paths, tmp_path: Path) -> None:
    paths.ensure()
    _capsule(paths, tmp_path, "deb", 3)
    store = Store(paths)
    for top in (store.chunks, store.manifests):
        assert stat.S_IMODE(os.stat(top).st_mode) & 0o007 == 0, top
    sub = next(p for p in store.chunks.iterdir() if p.is_dir())
    assert stat.S_IMODE(os.stat(sub).st_mode) & 0o004 == 0  # no listing of chunk names by others either
