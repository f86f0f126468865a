"""The content hash that names a stage-one image: every input that can change its bytes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

# Debian packages whose files end up in the image (interpreter, stdlib, shared
# libraries, busybox) or shape it (kmod's depmod, binutils' strip, libc-bin's ldconfig).
HOST_PACKAGES: tuple[str, ...] = (
    "python3.11", "libpython3.11-minimal", "libpython3.11-stdlib", "busybox-static", "libc6",
    "libc-bin", "libssl3", "libsqlite3-0", "libudev1", "libffi8", "libexpat1", "zlib1g",
    "libstdc++6", "libgcc-s1", "libbz2-1.0", "liblzma5", "libuuid1", "libmpdec3", "kmod", "binutils",
    "e2fsprogs",  # mke2fs is copied into the image for stateful installs
    "fdisk", "mdadm", "xfsprogs", "dosfstools", "libfdisk1", "libsmartcols1", "libblkid1", "libinih1",
    "liburcu8", "libreadline8", "libtinfo6",  # stateful layouts: sfdisk, mdadm, mkfs.xfs, mkfs.fat + libraries
)  # fmt: skip

# Bump when the image layout changes in a way the hashed sources would not show.
FORMAT = 1


def tree_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """Digest of (relative path, content) pairs, independent of the order given."""
    h = hashlib.sha256()
    for name, data in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def dir_digest(root: Path, rel_paths: Iterable[Path]) -> str:
    """tree_digest over files below ``root``."""
    return tree_digest((p.as_posix(), (root / p).read_bytes()) for p in rel_paths)


def parse_dpkg_query(text: str) -> dict[str, str]:
    """Parse ``dpkg-query -W -f '${Package}\\t${Version}\\n'`` output."""
    versions: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, version = line.partition("\t")
        if sep:
            versions[name.split(":")[0]] = version
    return versions


def host_package_versions(names: Iterable[str] = HOST_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; missing packages are simply absent from the result."""
    # dpkg-query exits 1 when a name is not installed but still prints the others.
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n", *names], capture_output=True, text=True, check=False
    )
    return parse_dpkg_query(proc.stdout)


def cache_key(inputs: Mapping[str, object]) -> str:
    """Stable hash of JSON-serialisable ``inputs`` (key order does not matter)."""
    blob = json.dumps({"format": FORMAT, **inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
