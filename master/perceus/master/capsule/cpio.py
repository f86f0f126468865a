"""The root filesystem as a deterministic cpio "newc" stream (the kernel's initramfs format).

Sorted paths, real modes and mtimes, and an inode number derived from the path (not a counter), so an
unchanged file yields byte-identical entries wherever it sits and edits do not ripple through the stream
(that is what lets the chunker reuse chunks between versions).  Hard links are written as independent
files (nlink 1): the kernel unpacker never needs the link, and it keeps every entry self-contained.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
# Always in a stateless root: the kernel needs /dev/console for init's stdio before devtmpfs is mounted.
# Added only when the tree lacks them (a capsule imported without root has no device nodes).
BASE_DEVICES: tuple[tuple[str, int, int, int], ...] = (
    ("dev/console", 0o600, 5, 1),
    ("dev/null", 0o666, 1, 3),
    ("dev/zero", 0o666, 1, 5),
    ("dev/random", 0o666, 1, 8),
    ("dev/urandom", 0o666, 1, 9),
    ("dev/tty", 0o666, 5, 0),
)


def pad4(n: int) -> int:
    return -n % 4


def header(
    *, name: str, mode: int, uid: int, gid: int, mtime: int, filesize: int, rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """One newc header with its NUL-terminated name, padded to 4 bytes."""
    encoded = name.encode("utf-8", "surrogateescape") + b"\0"
    ino = zlib.crc32(encoded) & 0x7FFFFFFF or 1
    fields = (
        ino,
        mode,
        uid,
        gid,
        1,
        max(0, mtime) & 0xFFFFFFFF,
        filesize,
        0,
        0,
        rdev[0],
        rdev[1],
        len(encoded),
        0,
    )
    head = MAGIC + b"".join(b"%08X" % f for f in fields)
    return head + encoded + b"\0" * pad4(len(head) + len(encoded))


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member: its header, then `size` data bytes from `path` (regular file) or `data`."""

    name: str
    header: bytes
    size: int
    path: Path | None = None
    data: bytes = b""

    @property
    def total(self) -> int:
        return len(self.header) + self.size + pad4(self.size)


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, os.stat_result, Path]]:
    with os.scandir(root / rel if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        name = f"{rel}/{e.name}" if rel else e.name
        st = e.stat(follow_symlinks=False)
        yield name, st, Path(e.path)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, name)


def entries(root: Path, *, base_devices: bool = True, keep_owner: bool | None = None) -> Iterator[Entry]:
    """Every entry of the tree under `root` in sorted order, then missing base devices and the trailer.

    Ownership is kept when packing as root (the tree was built with real owners); otherwise everything is
    0:0, as the files then belong to whoever imported them, not to the node's users.
    """
    owner = os.geteuid() == 0 if keep_owner is None else keep_owner
    seen: set[str] = set()
    for name, st, path in _walk(root):
        seen.add(name)
        mode = st.st_mode
        uid, gid = (st.st_uid, st.st_gid) if owner else (0, 0)
        mtime = int(st.st_mtime)
        if stat.S_ISREG(mode):
            yield Entry(
                name,
                header(name=name, mode=mode, uid=uid, gid=gid, mtime=mtime, filesize=st.st_size),
                st.st_size,
                path=path,
            )
        elif stat.S_ISLNK(mode):
            target = os.readlink(path).encode("utf-8", "surrogateescape")
            yield Entry(
                name,
                header(name=name, mode=mode, uid=uid, gid=gid, mtime=mtime, filesize=len(target)),
                len(target),
                data=target,
            )
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
            yield Entry(name, header(name=name, mode=mode, uid=uid, gid=gid, mtime=mtime, filesize=0, rdev=rdev), 0)
        elif stat.S_ISDIR(mode) or stat.S_ISFIFO(mode):
            yield Entry(name, header(name=name, mode=mode, uid=uid, gid=gid, mtime=mtime, filesize=0), 0)
        # sockets are runtime artefacts and have no place in an image: skipped
    if base_devices:
        if "dev" not in seen:
            yield Entry("dev", header(name="dev", mode=stat.S_IFDIR | 0o755, uid=0, gid=0, mtime=0, filesize=0), 0)
        for name, perm, major, minor in BASE_DEVICES:
            if name not in seen:
                yield Entry(
                    name,
                    header(
                        name=name,
                        mode=stat.S_IFCHR | perm,
                        uid=0,
                        gid=0,
                        mtime=0,
                        filesize=0,
                        rdev=(major, minor),
                    ),
                    0,
                )
    yield Entry(TRAILER, header(name=TRAILER, mode=0, uid=0, gid=0, mtime=0, filesize=0), 0)
