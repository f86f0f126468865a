"""Read cpio "newc" archives (initramfs images, 1.x `vnfs.img`) as tar-like members for the Extractor.

Hard links in newc share an inode number and only the last link carries the data; earlier links are
written as hard links to it once the data arrives (or as empty files if it never does).
"""

from __future__ import annotations

import stat
import tarfile
from collections.abc import Iterator
from typing import IO, BinaryIO

from perceus.errors import CapsuleError

MAGICS = (b"070701", b"070702")
HEADER = 110
TRAILER = "TRAILER!!!"
MAX_NAME = 4096


class _Exact:
    """Exactly `size` bytes of `src` as a file object (what Extractor copies from)."""

    def __init__(self, src: IO[bytes], size: int) -> None:
        self.src = src
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.src.read(n)
        if len(data) < n:
            raise CapsuleError("cpio archive is truncated")
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _read(src: IO[bytes], n: int) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise CapsuleError("cpio archive is truncated")
    return data


def members(src: IO[bytes], where: str) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
    """(member, data) pairs in archive order; `data` must be consumed before the next pair is taken."""
    pos = 0
    pending: dict[tuple[int, int, int], list[tarfile.TarInfo]] = {}
    while True:
        head = src.read(HEADER)
        if not head:
            break
        if len(head) != HEADER or head[:6] not in MAGICS:
            raise CapsuleError(f"{where}: not a newc cpio archive at offset {pos}")
        try:
            f = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise CapsuleError(f"{where}: bad cpio header at offset {pos}") from None
        ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize = f[:12]
        if not 0 < namesize <= MAX_NAME:
            raise CapsuleError(f"{where}: bad cpio name size at offset {pos}")
        name = _read(src, namesize)[:-1].decode("utf-8", "surrogateescape")
        _read(src, -(HEADER + namesize) % 4)
        pos += HEADER + namesize + (-(HEADER + namesize) % 4)
        if name == TRAILER:
            break
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(mode), uid, gid, mtime
        data = _Exact(src, size)
        key = (dmaj, dmin, ino)
        if stat.S_ISREG(mode):
            if nlink > 1 and size == 0:
                pending.setdefault(key, []).append(info)  # data comes with a later link
                info = None  # type: ignore[assignment]
            else:
                info.type, info.size = tarfile.REGTYPE, size
                yield info, data  # type: ignore[misc]
                for link in pending.pop(key, []) if nlink > 1 else []:
                    link.type, link.linkname = tarfile.LNKTYPE, info.name
                    yield link, None
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            yield info, None
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, data.read().decode("utf-8", "surrogateescape")
            yield info, None
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = rmaj, rmin
            yield info, None
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            yield info, None
        data.drain()
        _read(src, -size % 4)
        pos += size + (-size % 4)
    for links in pending.values():  # links whose data never came: empty files
        for link in links:
            link.type, link.size = tarfile.REGTYPE, 0
            yield link, None
