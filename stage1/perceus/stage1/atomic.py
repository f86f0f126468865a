"""Publishing a finished cache entry with one rename, safe against concurrent builders."""

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
