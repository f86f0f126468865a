"""Import sources: 1.x `.vnfs`, compressed tars, docker-archive and OCI image archives with whiteouts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from perceus.errors import AlreadyExistsError, CapsuleError
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.capsule.importer import Settings, import_capsule
from perceus.master.capsule.sources import detect
from perceus.master.config import Paths

KERNEL = os.urandom(5000)


def tar_bytes(files: dict[str, bytes | None], *, prefix: str = "", mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_original_vnfs_capsule(paths: Paths, tmp_path: Path) -> None:
    config = b'KERNEL="/boot/vmlinuz-2.6.18"\nKERNEL_ARGS="ramdisk_blocksize=1024 console=tty0"\nKEXEC_ARGS=""\n'
    src = tmp_path / "caos-nsa-node-1.0.5-1.stateless.x86_64.vnfs"
    src.write_bytes(tar_bytes({
        "config": config, "rootfs": None, "rootfs/boot": None, "rootfs/boot/vmlinuz-2.6.18": KERNEL,
        "rootfs/sbin/init": b"#!", "vnfs.img": b"", "umount": b"#!/bin/sh\nrm -rf /\n", "nodescripts": None,
    }, prefix="./", mode="w:bz2"))  # fmt: skip
    result = import_capsule(paths, src)
    assert result.name == "caos-nsa-node-1.0.5-1.stateless.x86_64"
    cap = paths.vnfs / result.name
    assert CapsuleConfig.load(cap / "config").kernel_args == "ramdisk_blocksize=1024 console=tty0"
    assert sorted(p.name for p in (cap / "rootfs").iterdir()) == ["boot", "sbin"]
    assert not (cap / "umount").exists()  # capsule executables are never taken, let alone run


def test_vnfs_without_config_is_refused(paths: Paths, tmp_path: Path) -> None:
    src = tmp_path / "x.vnfs"
    src.write_bytes(tar_bytes({"rootfs/boot/vmlinuz": KERNEL}, mode="w:bz2"))
    with pytest.raises(CapsuleError, match="not a Perceus capsule"):
        import_capsule(paths, src)


def test_tar_zst_and_settings(paths: Paths, tmp_path: Path) -> None:
    src = tmp_path / "root.tar.zst"
    src.write_bytes(zstandard.ZstdCompressor().compress(tar_bytes({"boot/vmlinuz-6.1": KERNEL, "etc/os": b"x"})))
    assert detect(src).kind == "tar"
    result = import_capsule(paths, src, settings=Settings(type="stateful", console="ttyS0,115200"))
    cfg = CapsuleConfig.load(paths.vnfs / "root/config")
    assert (result.name, cfg.type, cfg.console, cfg.kernel) == ("root", "stateful", "ttyS0,115200", "/boot/vmlinuz-6.1")
    assert result.packed.manifest.type == "stateful"
    with pytest.raises(AlreadyExistsError):
        import_capsule(paths, src)


def _blob(out: dict[str, bytes], data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    out[f"blobs/sha256/{digest}"] = data
    return f"sha256:{digest}"


LAYER1 = {"boot/vmlinuz-6.1": KERNEL, "etc/a": b"a", "etc/b": b"b", "opt/app/old": b"old", "opt/app/keep": b"k"}
LAYER2 = {"etc/.wh.a": b"", "opt/app/.wh..wh..opq": b"", "opt/app/new": b"new"}


def test_oci_image_layout_with_whiteouts(paths: Paths, tmp_path: Path) -> None:
    blobs: dict[str, bytes] = {}
    l1 = _blob(blobs, tar_bytes(LAYER1, mode="w:gz"))
    l2 = _blob(blobs, zstandard.ZstdCompressor().compress(tar_bytes(LAYER2)))
    manifest = _blob(blobs, json.dumps({"schemaVersion": 2, "layers": [{"digest": l1}, {"digest": l2}]}).encode())
    index = {"schemaVersion": 2, "manifests": [{"digest": manifest, "platform": {"architecture": "amd64"}}]}
    src = tmp_path / "image.oci.tar"
    src.write_bytes(tar_bytes({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                               "index.json": json.dumps(index).encode(), **blobs}))  # fmt: skip
    assert detect(src).kind == "oci"
    import_capsule(paths, src, name="img")
    root = paths.vnfs / "img/rootfs"
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["b"]
    assert sorted(p.name for p in (root / "opt/app").iterdir()) == ["new"]


def test_docker_archive(paths: Paths, tmp_path: Path) -> None:
    files = {
        "aaaa/layer.tar": tar_bytes(LAYER1), "bbbb/layer.tar": tar_bytes(LAYER2),
        "manifest.json": json.dumps([{"Config": "c.json", "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]}]).encode(),
    }  # fmt: skip
    src = tmp_path / "debian.tar"
    src.write_bytes(tar_bytes(files))
    result = import_capsule(paths, src, kind="oci")
    root = paths.vnfs / result.name / "rootfs"
    assert not (root / "etc/a").exists() and (root / "opt/app/new").read_bytes() == b"new"


def test_image_layer_cannot_escape(paths: Paths, tmp_path: Path) -> None:
    files = {"l/layer.tar": tar_bytes({"boot/vmlinuz": KERNEL, "../../x": b"x"}),
             "manifest.json": json.dumps([{"Layers": ["l/layer.tar"]}]).encode()}  # fmt: skip
    src = tmp_path / "evil.tar"
    src.write_bytes(tar_bytes(files))
    with pytest.raises(CapsuleError, match=r"parent reference"):
        import_capsule(paths, src, kind="oci")
    assert [p.name for p in paths.vnfs.iterdir()] == []
