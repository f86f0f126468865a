"""Pack an image tree into a zstd-compressed newc initramfs."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import zstandard

from perceus.stage1.cpio import Sink, write_tree
from perceus.stage1.layout import CHAR_DEVICES


@dataclass(frozen=True)
class Packed:
    """What pack() wrote: compressed size, bytes before compression, archive entries."""

    size: int
    unpacked_size: int
    entries: int


class _Counter:
    """Counts bytes on their way into the compressor (the cpio size before zstd)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        self.sink.write(data)
        return len(data)


def pack(root: Path, dest: Path, *, level: int) -> Packed:
    """Write ``root`` as ``dest`` (cpio newc, zstd ``level``, all cores); write-then-rename."""
    tmp = dest.with_name(dest.name + ".tmp")
    # write_content_size off: the size is unknown while streaming, and the kernel does not need it.
    cctx = zstandard.ZstdCompressor(level=level, threads=-1)
    with tmp.open("wb") as fh, cctx.stream_writer(fh, closefd=False) as zw:
        counter = _Counter(zw)
        entries = write_tree(root, counter, char_devices=CHAR_DEVICES)
        zw.flush(zstandard.FLUSH_FRAME)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(dest)
    return Packed(dest.stat().st_size, counter.count, entries)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
