"""Split an entry stream into raw chunks so that unchanged files give unchanged chunks.

Chosen scheme (file-aligned content-defined chunking): a chunk ends only *between* entries, once it holds at
least `size/2` bytes and a boundary entry is reached.  Whether an entry is a boundary is decided by its name
and size (CRC32 of the name below a threshold proportional to the entry's size: on average one cut per
`size/2` bytes), never by byte offsets, so adding, removing or editing a file changes the chunk holding it
and the stream re-synchronises at the next boundary entry.  Entries larger than `2*size` start a chunk of
their own and are cut every `size` bytes from the entry's start, so an edit in a large file leaves its other
pieces alone.  Byte-level CDC (Rabin/FastCDC) would also survive edits inside big files but costs ~10× the
CPU in Python; file alignment gets nearly all the reuse a root filesystem offers (packages replace files).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator

from perceus.master.capsule.cpio import Entry, pad4

DEFAULT_CHUNK = 2 << 20
_READ = 1 << 20


def _copy_data(entry: Entry, buf: bytearray, want: int | None = None) -> Iterator[None]:
    """Append the entry's data to `buf`; yields whenever `buf` reaches `want` bytes (caller drains it)."""
    if entry.path is None:
        buf += entry.data
        return
    left = entry.size
    with open(entry.path, "rb") as fh:
        while left > 0:
            step = min(_READ, left) if want is None else min(_READ, left, max(1, want - len(buf)))
            block = fh.read(step)
            if not block:
                raise OSError(f"{entry.path}: file shrank while packing")
            buf += block
            left -= len(block)
            if want is not None and len(buf) >= want:
                yield


def _boundary(name: str, total: int, gap: int) -> bool:
    """Cut after this entry?  True with probability total/gap, decided by the name's CRC32 (deterministic).

    Weighting by size makes the expected distance between cut points `gap` bytes whatever the file sizes,
    so few cuts are forced by the size cap (forced cuts depend on offsets and do not re-synchronise).
    """
    return zlib.crc32(name.encode("utf-8", "surrogateescape")) * gap < total << 32


def chunks(entries: Iterable[Entry], *, size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """Raw chunks of the stream formed by `entries` (concatenated, they are exactly the stream)."""
    lo, hi = size // 2, size * 2
    buf = bytearray()
    for entry in entries:
        total = entry.total
        if total > hi:
            if buf:
                yield bytes(buf)
                buf.clear()
            buf += entry.header
            for _ in _copy_data(entry, buf, size):
                yield bytes(buf[:size])
                del buf[:size]
            buf += b"\0" * pad4(entry.size)
            if len(buf) >= size:
                yield bytes(buf[:size])
                del buf[:size]
            continue
        if len(buf) + total > hi:
            yield bytes(buf)
            buf.clear()
        buf += entry.header
        for _ in _copy_data(entry, buf):
            pass
        buf += b"\0" * pad4(entry.size)
        if len(buf) >= lo and _boundary(entry.name, total, lo):
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def file_chunks(path: str | bytes | os.PathLike[str], *, size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """A single file (kernel, initrd) cut every `size` bytes."""
    with open(path, "rb") as fh:
        while block := fh.read(size):
            yield block
