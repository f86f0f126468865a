"""Where a capsule lives on disk (design.md §4) and which names are allowed.

```
<state>/vnfs/<name>/config           original keys (1.x ref §2.7) + TYPE, CONSOLE
<state>/vnfs/<name>/rootfs/          the tree admins edit
<state>/vnfs/<name>/manifest         bytes of the current packed version
<state>/vnfs/<name>/history          one line per packed version: "<version> <manifest hash> <created>"
<state>/vnfs/<name>/mounted          present while the capsule is mounted (holds the /mnt link path)
<state>/vnfs/<name>/chunkmap         raw-chunk hash → chunk ref cache, so a repack compresses only changes
<state>/manifests/<hash>             every kept manifest, content-addressed (served by hash)
<state>/chunks/ab/<hash>             zstd chunks, content-addressed, shared by every capsule
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perceus.errors import CapsuleError, NotFoundError
from perceus.master.config import Paths
from perceus.protocol import names
from perceus.protocol.capsule import is_hash

TMP_PREFIX = ".tmp-"


def check_name(name: str) -> str:
    """The original's rule (1.x ref §4.6), plus: no leading dot (our temp dirs) and not `.`/`..`."""
    if not names.valid("vnfs", name):  # fullmatch: a trailing newline no longer passes (perceus.protocol.names)
        raise CapsuleError(f"VNFS name {name!r} contains illegal characters (allowed: A-Z a-z 0-9 . _ -)")
    return name


@dataclass(frozen=True)
class Store:
    """The capsule-related directories under the state dir."""

    paths: Paths

    @property
    def vnfs(self) -> Path:
        return self.paths.vnfs

    @property
    def chunks(self) -> Path:
        return self.paths.state_dir / "chunks"

    @property
    def manifests(self) -> Path:
        return self.paths.state_dir / "manifests"

    def chunk_path(self, digest: str) -> Path:
        if not is_hash(digest):
            raise CapsuleError(f"not a chunk hash: {digest!r}")
        return self.chunks / digest[:2] / digest

    def manifest_path(self, digest: str) -> Path:
        if not is_hash(digest):
            raise CapsuleError(f"not a manifest hash: {digest!r}")
        return self.manifests / digest

    def capsule(self, name: str) -> CapsuleDir:
        return CapsuleDir(self.vnfs / check_name(name))

    def existing(self, name: str) -> CapsuleDir:
        cap = self.capsule(name)
        if not cap.config.is_file():
            raise NotFoundError("VNFS", name)
        return cap

    def names(self) -> list[str]:
        """Capsules (directories holding a `config`), sorted, as the original's `vnfs list`."""
        if not self.vnfs.is_dir():
            return []
        return sorted(p.name for p in self.vnfs.iterdir() if not p.name.startswith(".") and (p / "config").is_file())

    def ensure(self) -> None:
        for d in (self.vnfs, self.chunks, self.manifests):
            d.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class CapsuleDir:
    """The files of one capsule."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest"

    @property
    def history(self) -> Path:
        return self.root / "history"

    @property
    def mounted(self) -> Path:
        return self.root / "mounted"

    @property
    def chunkmap(self) -> Path:
        return self.root / "chunkmap"

    def is_mounted(self) -> bool:
        return self.mounted.exists()
