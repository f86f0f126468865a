"""Export a capsule as an original Perceus `.vnfs` (bzip2 tar of `config` + `rootfs/`, 1.x ref §9.1) or a tar.

The output is written to `<file>.part` and renamed at the end, as 1.x did; the compression follows the file
name (`.vnfs`/`.tar.bz2` bzip2, `.tar.gz`, `.tar.zst`, `.tar`).  Packed chunks are not exported: they are
rebuilt on import, exactly as 1.x excluded `vnfs.img`.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import zstandard

from perceus.errors import ConflictError
from perceus.master.capsule.layout import Store
from perceus.master.config import Paths


def _mode(out: Path) -> str:
    name = out.name
    if name.endswith((".vnfs", ".tar.bz2", ".tbz2")):
        return "bz2"
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    if name.endswith((".tar.zst", ".tzst")):
        return "zst"
    return ""


def export_capsule(paths: Paths, name: str, out: Path, *, progress: Callable[[int], None] | None = None) -> Path:
    cap = Store(paths).existing(name)
    if cap.is_mounted():
        raise ConflictError(f"You must un-mount the VNFS {name!r} before it can be exported")
    part = out.with_name(out.name + ".part")
    mode = _mode(out)
    try:
        with ExitStack() as stack:
            raw: IO[bytes] = stack.enter_context(open(part, "wb"))
            if mode == "zst":
                raw = stack.enter_context(zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(raw))
                tf = stack.enter_context(tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT))
            elif mode == "bz2":
                tf = stack.enter_context(tarfile.open(fileobj=raw, mode="w|bz2", format=tarfile.PAX_FORMAT))
            elif mode == "gz":
                tf = stack.enter_context(tarfile.open(fileobj=raw, mode="w|gz", format=tarfile.PAX_FORMAT))
            else:
                tf = stack.enter_context(tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT))

            def seen(info: tarfile.TarInfo) -> tarfile.TarInfo:
                if progress is not None and info.isreg():
                    progress(info.size)
                return info

            tf.add(cap.config, arcname="./config")
            if (cap.root / "hybridize").is_file():  # a hybrid capsule's list travels as in a 1.x capsule
                tf.add(cap.root / "hybridize", arcname="./hybridize")
            tf.add(cap.rootfs, arcname="./rootfs", recursive=True, filter=seen)
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return out
