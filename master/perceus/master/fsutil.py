"""Crash-safe file writes on the master with a fixed mode: `perceus.fsatomic`'s routine (temp file, fsync,
rename, fsync the directory), so master and agent share one tested implementation."""

from __future__ import annotations

from pathlib import Path

from perceus.fsatomic import replace_file


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so a reader sees either the old or the new file, never half of one."""
    replace_file(path, data, mode=mode)
