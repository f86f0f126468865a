"""cpio stream + chunker: chunks concatenate to the stream, unchanged files keep their chunks."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from perceus.master.capsule import chunker, cpio
from perceus.master.capsule.config import new_config
from perceus.master.capsule.layout import CapsuleDir, Store
from perceus.master.capsule.pack import pack
from perceus.master.config import Paths


def stream(root: Path) -> bytes:
    out = io.BytesIO()
    for e in cpio.entries(root, keep_owner=False):
        out.write(e.header)
        out.write(e.path.read_bytes() if e.path is not None else e.data)
        out.write(b"\0" * cpio.pad4(e.size))
    return out.getvalue()


def parse_names(data: bytes) -> list[str]:
    names, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 6] == cpio.MAGIC
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        names.append(name)
        pos += 110 + namesize
        pos += -pos % 4
        pos += filesize + (-filesize % 4)
    return names


def test_chunks_concatenate_to_the_stream(tree: Path) -> None:
    parts = list(chunker.chunks(cpio.entries(tree, keep_owner=False), size=256 << 10))
    assert b"".join(parts) == stream(tree)
    assert len(parts) > 5
    assert max(len(p) for p in parts) <= 512 << 10


def test_stream_is_sorted_newc_with_base_devices_and_trailer(tree: Path) -> None:
    names = parse_names(stream(tree))
    assert names[-1] == cpio.TRAILER
    assert "dev/console" in names and "dev/null" in names
    body = names[: names.index("dev")]
    assert body == sorted(body, key=lambda n: n.split("/"))


def test_large_file_edit_changes_only_its_piece(tree: Path) -> None:
    size = 256 << 10
    before = list(chunker.chunks(cpio.entries(tree, keep_owner=False), size=size))
    big = tree / "usr/share/big.dat"
    data = bytearray(big.read_bytes())
    data[-10] ^= 0xFF  # flip one byte near the end of a 1.5 MB file (6 pieces)
    st = big.stat()
    big.write_bytes(bytes(data))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = list(chunker.chunks(cpio.entries(tree, keep_owner=False), size=size))
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert any(len(p) == size and bytes(p[-1000:]) in data for p in after)


def _capsule(paths: Paths, tree: Path) -> CapsuleDir:
    cap = CapsuleDir(paths.vnfs / "deb")
    cap.root.mkdir(parents=True)
    os.rename(tree, cap.rootfs)
    new_config(kind="stateless", kernel="/boot/vmlinuz-6.1.0-9-amd64").save(cap.config)
    return cap


def test_unchanged_files_reuse_chunks(paths: Paths, tree: Path) -> None:
    store = Store(paths)
    cap = _capsule(paths, tree)
    first = pack(store, cap, chunk_size=128 << 10)
    assert first.changed and first.manifest.version == 1
    again = pack(store, cap, chunk_size=128 << 10)
    assert not again.changed and again.manifest.hash == first.manifest.hash and again.new_chunks == 0
    # edit one small file in the middle, add one, remove one
    (cap.rootfs / "usr/lib/lib0100.so").write_bytes(b"patched")
    (cap.rootfs / "usr/lib/lib0150b.so").write_bytes(os.urandom(5000))
    (cap.rootfs / "usr/lib/lib0170.so").unlink()
    second = pack(store, cap, chunk_size=128 << 10)
    assert second.changed and second.manifest.version == 2
    old = {c.hash for c in first.manifest.rootfs.chunks}
    new = [c.hash for c in second.manifest.rootfs.chunks]
    reused = sum(h in old for h in new)
    assert second.new_chunks == len(new) - reused
    assert reused >= len(new) - 6, (reused, len(new))
    assert second.manifest.kernel == first.manifest.kernel


def test_chunks_are_zstd_named_by_compressed_hash(paths: Paths, tree: Path) -> None:
    import zstandard

    from perceus.protocol.capsule import digest

    store = Store(paths)
    cap = _capsule(paths, tree)
    m = pack(store, cap).manifest
    for ref in m.all_chunks():
        data = store.chunk_path(ref.hash).read_bytes()
        assert digest(data) == ref.hash and len(data) == ref.size
        assert len(zstandard.ZstdDecompressor().decompress(data)) == ref.raw_size
        assert not stat.S_IMODE(store.chunk_path(ref.hash).stat().st_mode) & 0o222  # read-only
    assert store.manifest_path(m.hash).read_bytes() == cap.manifest.read_bytes()
