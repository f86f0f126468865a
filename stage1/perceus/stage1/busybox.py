"""Install busybox-static and one symlink per applet into the image tree."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from perceus.stage1.run import run

BUSYBOX = Path("/usr/bin/busybox")
# Where busybox lives inside the image; applet links point here.
IMAGE_PATH = "/usr/bin/busybox"


def applet_links(list_full: str) -> list[str]:
    """Map ``busybox --list-full`` output to image paths (merged /usr) that should link to busybox.

    ``bin/x`` and ``sbin/x`` land in ``usr/bin`` and ``usr/sbin`` because the image's
    /bin and /sbin are symlinks into /usr.  The ``busybox`` entry itself is skipped:
    linking it would replace the binary with a symlink to itself (ELOOP at /init).
    """
    links: set[str] = set()
    for raw in list_full.split():
        rel = PurePosixPath(raw.strip().lstrip("/"))
        if not rel.parts or rel.name == "busybox":
            continue
        if rel.parts[0] in ("bin", "sbin"):
            rel = PurePosixPath("usr", *rel.parts)
        links.add(rel.as_posix())
    return sorted(links)


def install(root: Path, busybox: Path = BUSYBOX) -> int:
    """Copy busybox into ``root`` and create its applet links; return the number of links."""
    dest = root / IMAGE_PATH.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, dest)
    listing = run([str(busybox), "--list-full"], step="busybox applets")
    links = applet_links(listing)
    for rel in links:
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(IMAGE_PATH)
    return len(links)
