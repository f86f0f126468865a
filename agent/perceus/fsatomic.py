"""Crash-safe replacement of a file, shared by node and master: temp file beside it, fsync, rename, fsync the
directory."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` so readers see the old or the new content, never a mix; keeps the old file's mode and
    owner unless `mode` is given (passwd must stay 0644 root:root, whatever umask the daemon has)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()  # never the mode/owner of whatever a symlink put here points to
        keep_mode, owner = (st.st_mode & 0o7777, (st.st_uid, st.st_gid)) if stat.S_ISREG(st.st_mode) else (0o644, None)
    except FileNotFoundError:
        keep_mode, owner = 0o644, None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.perceus.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, keep_mode if mode is None else mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def replace_with_new_file(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` by a file made fresh under a random name (O_EXCL|O_NOFOLLOW: a planted file or symlink is
    never written through, and nothing planted lends its owner), with `mode`, then renamed into place.  For
    secrets and keys, where `replace_file`'s keeping of the old owner would be wrong."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
