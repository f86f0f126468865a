"""Capsule import caps through `perceus vnfs import`: a decompression bomb, a huge sparse file, too many files
or bytes — each a one-line error, exit 1, and nothing stored (no capsule, no temp tree, no chunk, no manifest).
Before issue 14 the importer unpacked whatever it was given."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import structlog
import zstandard
from tests.integration.security.conftest import cli

from perceus.master.capsule.extract import ImportLimitExceeded, Limits
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.config import Paths


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _nothing_stored(paths: Paths) -> None:
    store = Store(paths)
    assert not store.vnfs.exists() or not any(store.vnfs.iterdir()), list(store.vnfs.iterdir())
    for top in (store.chunks, store.manifests):
        assert not top.exists() or not [p for p in top.rglob("*") if p.is_file()]


def _one_line_error(capsys: pytest.CaptureFixture[str], words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("perceus: error:") and words in err[0], err


def test_decompression_bomb_is_refused(paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths.ensure()
    bomb = tmp_path / "bomb.tar.zst"
    size = 300 << 20
    with (
        open(bomb, "wb") as raw,
        zstandard.ZstdCompressor(level=1).stream_writer(raw) as z,
        tarfile.open(fileobj=z, mode="w|") as tf,
    ):
        info = tarfile.TarInfo("boot/vmlinuz-6.1.0-9-amd64")
        info.size = 1024
        tf.addfile(info, io.BytesIO(os.urandom(1024)))
        info = tarfile.TarInfo("var/zeros")
        info.size = size
        tf.addfile(info, io.BufferedReader(_Zeros(size), 1 << 20))
    assert bomb.stat().st_size < 1 << 20
    assert cli(paths, "vnfs", "import", str(bomb), "--name", "bomb") == 1
    _one_line_error(capsys, "decompression bomb")
    _nothing_stored(paths)


def test_huge_sparse_file_is_refused(paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths.ensure()
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(os.urandom(4096))
    with open(root / "hole", "wb") as fh:
        fh.truncate(20 << 30)  # 20 GiB, nothing allocated
    assert cli(paths, "vnfs", "import", str(root), "--name", "holey") == 1
    _one_line_error(capsys, "sparse file")
    _nothing_stored(paths)


@pytest.mark.parametrize(("limits", "words"), [(Limits(max_files=10), "more than 10 files"),
                                               (Limits(max_bytes=100_000), "more than 100,000 bytes")])  # fmt: skip
def test_file_count_and_size_caps(paths: Paths, tmp_path: Path, limits: Limits, words: str) -> None:
    structlog.reset_defaults()  # an earlier CLI test pointed logging at its (now closed) captured stderr
    paths.ensure()
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(os.urandom(60_000))
    for i in range(20):
        (root / f"f{i}").write_bytes(os.urandom(5_000))
    with pytest.raises(ImportLimitExceeded, match=words):
        import_capsule(paths, root, name="capped", limits=limits)
    _nothing_stored(paths)
    import_capsule(paths, root, name="fits")  # the defaults let a normal tree through
