"""Is a path on a network (or cluster) file system?  statfs(2)'s f_type magic, read through libc.

SQLite's WAL keeps its index in shared memory beside the database (`-shm`, mmap'd) and relies on POSIX locks;
on NFS, SMB and the like neither is reliable across hosts, and a master on such a mount can corrupt its node
store.  Perceus 1.x's docs suggested an NFS-shared state dir for several masters (1.x ref §11.1); here that is a
warning, and several masters share PostgreSQL instead (docs/multi-master.md).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

# From linux/magic.h and the file systems' own headers.
NETWORK_MAGIC: dict[int, str] = {
    0x6969: "nfs",
    0x517B: "smb",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x00C36400: "ceph",
    0x5346414F: "afs",
    0x6B414653: "kafs",
    0x73757245: "coda",
    0x01021997: "9p",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0x7461636F: "ocfs2",
    0x01161970: "gfs2",
    0x564C: "ncp",
}
_STATFS_SIZE = 512  # larger than struct statfs on every Linux ABI; f_type is its first field (a C long)


def fs_magic(path: Path) -> int | None:
    """statfs(path).f_type, or None when it cannot be read."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(_STATFS_SIZE)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def network_fs(path: Path) -> str:
    """The network file system `path` (or its nearest existing parent) is on, "" for a local one."""
    while not path.exists() and path != path.parent:
        path = path.parent
    magic = fs_magic(path)
    return NETWORK_MAGIC.get(magic, "") if magic is not None else ""
