"""Importing cpio images (the stage-one initramfs, 1.x `vnfs.img`): round trip, hard links, unsafe names."""

from __future__ import annotations

import filecmp
import gzip
import os
from pathlib import Path

import pytest
import zstandard

from perceus.errors import CapsuleError
from perceus.master.capsule import cpio
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.sources import detect
from perceus.master.config import Paths


def stream(root: Path) -> bytes:
    out = bytearray()
    for e in cpio.entries(root, base_devices=False, keep_owner=False):
        out += e.header + (e.path.read_bytes() if e.path is not None else e.data) + bytes(cpio.pad4(e.size))
    return bytes(out)


def newc(name: str, mode: int, data: bytes = b"", *, ino: int = 1, nlink: int = 1) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
    head += bytes(-len(head) % 4)
    return head + data + bytes(-len(data) % 4)


def test_zstd_cpio_round_trip(paths: Paths, tree: Path, tmp_path: Path) -> None:
    img = tmp_path / "stage1.cpio.zst"
    img.write_bytes(zstandard.ZstdCompressor().compress(stream(tree)))
    assert detect(img).kind == "cpio"
    import_capsule(paths, img, name="mini", kernel=tree / "boot/vmlinuz-6.1.0-9-amd64")
    root = paths.vnfs / "mini/rootfs"
    cmp = filecmp.dircmp(tree, root)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    assert os.readlink(root / "usr/abs-link") == "/usr/lib/lib0001.so"


def test_gzip_vnfs_img_with_hard_links(paths: Paths, tmp_path: Path) -> None:
    data = newc("boot", 0o40755) + newc("boot/vmlinuz", 0o100644, b"K" * 100, ino=2)
    data += (
        newc("bin", 0o40755) + newc("bin/a", 0o100755, ino=9, nlink=2) + newc("bin/b", 0o100755, b"#!x", ino=9, nlink=2)
    )
    data += newc("TRAILER!!!", 0)
    img = tmp_path / "vnfs.img"
    img.write_bytes(gzip.compress(data))
    import_capsule(paths, img, name="old")
    root = paths.vnfs / "old/rootfs"
    assert (root / "bin/a").read_bytes() == b"#!x" and os.stat(root / "bin/a").st_ino == os.stat(root / "bin/b").st_ino


@pytest.mark.parametrize(("data", "error"), [
    (newc("../x", 0o100644, b"x"), "parent reference"),
    (newc("/etc/passwd", 0o100644, b"x"), "absolute path"),
    (b"070701" + b"Z" * 104, "bad cpio header"),
    (newc("boot/vmlinuz", 0o100644, b"K" * 100)[:150], "truncated"),
])  # fmt: skip
def test_bad_cpio_is_refused(paths: Paths, tmp_path: Path, data: bytes, error: str) -> None:
    img = tmp_path / "bad.cpio"
    img.write_bytes(data)
    with pytest.raises(CapsuleError, match=error):
        import_capsule(paths, img, kind="cpio")
    assert list(paths.vnfs.iterdir()) == []
