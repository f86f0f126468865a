"""Versions, garbage collection, the bus index, and the genchroot plan (no processes started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.errors import CapsuleError
from perceus.master.capsule import manage
from perceus.master.capsule.agent_install import UNIT
from perceus.master.capsule.genchroot import debootstrap_argv, genchroot_debian
from perceus.master.capsule.importer import Settings, import_capsule
from perceus.master.capsule.index import CapsuleStoreIndex
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import history
from perceus.master.config import Paths


def test_versions_gc_and_index(paths: Paths, tree: Path) -> None:
    index = CapsuleStoreIndex(paths)
    assert index.manifest_hash("deb") is None and index.manifest_hash("../etc") is None
    first = import_capsule(paths, tree, name="deb").packed.manifest
    assert index.manifest_hash("deb") == first.hash
    store = Store(paths)
    for i in range(5):  # five more versions, each touching one file
        manage.mount(paths, "deb", None)
        (paths.vnfs / f"deb/rootfs/usr/lib/lib{i:04d}.so").write_bytes(b"v%d" % i)
        manage.umount(paths, "deb")
    versions = history(store.capsule("deb"))
    assert [v for v, _, _ in versions] == [1, 2, 3, 4, 5, 6]
    assert index.manifest_hash("deb") == versions[-1][1]  # seen without a restart
    assert index.manifest_bytes(versions[0][1]) is not None
    manage.gc(paths)
    kept = {p.name for p in store.manifests.iterdir()}
    assert kept == {h for _, h, _ in versions[-manage.KEEP_VERSIONS :]}
    assert index.manifest_bytes(versions[0][1]) is None
    assert manage.configure(paths, "deb", Settings(console="ttyS1")) is not None
    assert manage.configure(paths, "deb", Settings(console="ttyS1")) is None  # unchanged: no new version


def test_corrupt_served_manifest_is_not_served(paths: Paths, tree: Path) -> None:
    m = import_capsule(paths, tree, name="deb").packed.manifest
    path = Store(paths).manifest_path(m.hash)
    path.chmod(0o644)
    path.write_bytes(b"\x80")
    assert CapsuleStoreIndex(paths).manifest_bytes(m.hash) is None
    assert CapsuleStoreIndex(paths).manifest_bytes("deb") is None


def test_genchroot_plan(tmp_path: Path) -> None:
    argv = debootstrap_argv("bookworm", tmp_path / "root", arch="amd64", mirror="http://deb.example/debian")
    assert argv[:2] == ["debootstrap", "--variant=minbase"]
    assert "linux-image-amd64" in argv[3] and "systemd-sysv" in argv[3] and "python3" in argv[3]
    assert argv[-3:] == ["bookworm", str(tmp_path / "root"), "http://deb.example/debian"]
    assert "ExecStart=/usr/bin/python3 -m perceus.agent --mode runtime" in UNIT
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").touch()
    with pytest.raises(CapsuleError):
        genchroot_debian("bookworm", tmp_path / "busy", agent_src=tmp_path, pins=())
