"""The stage-one key overlay: a tiny uncompressed newc cpio holding the master's public keys.

The kernel unpacks concatenated initramfs segments in order, so this overlay is loaded as a second initrd
(iPXE `initrd perceus-keys.cpio`) or appended to stage1.cpio.zst.  The stage-one image itself stays
identical for every cluster (one build cache), and a key rotation does not need an image rebuild.
"""

from __future__ import annotations

import stat
from pathlib import Path

from perceus.master.capsule.cpio import header, pad4
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.master.security.keys import MasterKeys

OVERLAY_NAME = "perceus-keys.cpio"
TRAILER = "TRAILER!!!"


def overlay_bytes(keys: MasterKeys) -> bytes:
    """etc/, etc/perceus/, etc/perceus/master.pub and sign.pub (hex, as the agent reads them)."""
    out = bytearray()
    for name in ("etc", "etc/perceus"):
        out += header(name=name, mode=stat.S_IFDIR | 0o755, uid=0, gid=0, mtime=0, filesize=0)
    for name, value in (("etc/perceus/master.pub", keys.bus_public), ("etc/perceus/sign.pub", keys.sign_public)):
        data = value.hex().encode() + b"\n"
        out += header(name=name, mode=stat.S_IFREG | 0o644, uid=0, gid=0, mtime=0, filesize=len(data))
        out += data + b"\0" * pad4(len(data))
    out += header(name=TRAILER, mode=0, uid=0, gid=0, mtime=0, filesize=0)
    return bytes(out + b"\0" * pad4(len(out)))


def write_overlay(paths: Paths, keys: MasterKeys, dest: Path | None = None) -> Path:
    """Write the overlay (default `<state>/tftp/perceus-keys.cpio`, public data only) atomically."""
    target = dest or paths.tftp / OVERLAY_NAME
    atomic_write(target, overlay_bytes(keys), mode=0o644)
    return target
