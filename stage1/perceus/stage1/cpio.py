"""A deterministic cpio "newc" archive writer (the format the kernel unpacks as initramfs).

Written in Python rather than calling GNU cpio so the archive is byte-for-byte
reproducible: sorted paths, owner 0:0, one fixed mtime, inode numbers in order.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_COPY_CHUNK = 1 << 20


class Sink(Protocol):
    """Anything with a binary ``write`` (a file, a compressor stream)."""

    def write(self, data: bytes, /) -> object: ...


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def header(
    *, name: str, ino: int, mode: int, nlink: int, mtime: int, filesize: int, rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """Encode one newc header plus the NUL-terminated name, padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, mtime, filesize, 0, 0, rdev[0], rdev[1], len(encoded), 0)
    head = MAGIC + b"".join(b"%08X" % f for f in fields)
    return head + encoded + _pad(len(head) + len(encoded))


def walk_sorted(root: Path) -> Iterator[Path]:
    """Yield every path under ``root`` (not ``root`` itself), parents before children, sorted."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from walk_sorted(path)


def write_tree(
    root: Path, out: Sink, *, mtime: int = 0, char_devices: dict[str, tuple[int, int, int]] | None = None
) -> int:
    """Write the tree under ``root`` as a newc archive to ``out``; return the entry count.

    ``char_devices`` maps archive names to (permissions, major, minor); they are
    written after the tree, so no mknod (and no root) is needed at build time.
    Hard links are stored as independent files (nlink 1): simpler, and the
    kernel's unpacker treats them the same way for our purposes.
    """
    count = 0
    ino = 0
    for ino, path in enumerate(walk_sorted(root), start=1):
        st = path.lstat()
        name = path.relative_to(root).as_posix()
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            target = os.readlink(path).encode()
            out.write(header(name=name, ino=ino, mode=mode, nlink=1, mtime=mtime, filesize=len(target)))
            out.write(target + _pad(len(target)))
        elif stat.S_ISDIR(mode):
            out.write(header(name=name, ino=ino, mode=mode, nlink=2, mtime=mtime, filesize=0))
        elif stat.S_ISREG(mode):
            out.write(header(name=name, ino=ino, mode=mode, nlink=1, mtime=mtime, filesize=st.st_size))
            with path.open("rb") as f:
                while chunk := f.read(_COPY_CHUNK):
                    out.write(chunk)
            out.write(_pad(st.st_size))
        else:
            raise ValueError(f"unsupported file type in initramfs tree: {path}")
        count += 1
    for name, (perm, major, minor) in sorted((char_devices or {}).items()):
        ino += 1
        mode = stat.S_IFCHR | perm
        out.write(header(name=name, ino=ino, mode=mode, nlink=1, mtime=mtime, filesize=0, rdev=(major, minor)))
        count += 1
    out.write(header(name=TRAILER, ino=0, mode=0, nlink=1, mtime=0, filesize=0))
    return count
