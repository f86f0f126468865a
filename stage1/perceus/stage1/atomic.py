"""Cache entries: published with one rename (safe against concurrent builders), old ones pruned."""

from __future__ import annotations

import shutil
from pathlib import Path


def publish_dir(ready: Path, dest: Path, *, complete: Path) -> None:
    """Rename the finished directory ``ready`` to ``dest``.

    ``complete`` is the marker file that only finished entries have (relative to
    the entry).  If another process published ``dest`` first, ours is dropped (same
    inputs, same content); a leftover without the marker (a crash) is replaced.
    """
    if dest.exists() and not (dest / complete).exists():
        shutil.rmtree(dest, ignore_errors=True)
    try:
        ready.rename(dest)
    except OSError:
        if not (dest / complete).exists():
            raise
        shutil.rmtree(ready, ignore_errors=True)


def prune_cache(directory: Path, *, keep: int, protect: Path) -> list[Path]:
    """Delete all but the ``keep`` newest entries of ``directory`` (never ``protect``); return them.

    Each image is ~30 MB and each extracted kernel ~400 MB, so old builds must not pile up.
    """
    if not directory.is_dir():
        return []
    entries = sorted(
        (p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".") and p != protect),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed = entries[max(keep - 1, 0) :]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
