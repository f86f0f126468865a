"""Unpack archive members into a capsule tree without ever writing outside it.

Every path is opened component by component with `O_NOFOLLOW` relative to the tree's root descriptor, so an
entry can never reach outside through `..`, an absolute name, or a symlink planted by an earlier entry
(the classic `link -> /etc` then `link/passwd` attack).  Refused, each with a one-line CapsuleError:
absolute names, `..` components, relative symlinks whose target climbs out of the tree, hard links to
anything outside it or to a non-file, paths through a symlink, unknown member types.  Absolute symlink
targets are allowed: they resolve inside the capsule on the node (every Debian root has them) and we never
follow them here.  Device nodes are created only when running as root; otherwise they are skipped and
counted (the packed stream adds /dev/console, null, zero, random, urandom and tty itself).
Whiteouts (`.wh.<name>`, `.wh..wh..opq`) are applied for OCI image layers.

Caps (issue 14), checked on each member's declared size *before* anything of it is written: total bytes,
file count, the ratio of unpacked bytes to the archive's size (a decompression bomb), and sparse files (a
10 TB hole that would be unpacked as zeros).  Each is a one-line CapsuleError; the importer then removes
everything the import wrote.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from perceus.errors import CapsuleError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Limits:
    """What one import may unpack.  The defaults fit any real root filesystem with room to spare."""

    max_bytes: int = 64 << 30  # 64 GiB unpacked
    max_files: int = 4_000_000
    max_ratio: float = 200.0  # unpacked bytes per archive byte (zstd/xz of real roots: 3-10)
    ratio_slack: int = 256 << 20  # small archives may expand this much regardless of the ratio
    sparse_min: int = 1 << 20  # a file this large with < 1/8 of it allocated (or a tar sparse member) is refused


class ImportLimitExceeded(CapsuleError):
    """An archive that would unpack beyond a cap: refused before the member is written."""


class UnsafeEntry(CapsuleError):
    """An archive member that would escape (or corrupt) the target tree."""

    def __init__(self, source: str, name: str, why: str) -> None:
        super().__init__(f"{source}: refusing entry {name!r}: {why}")
        self.source = source
        self.name = name
        self.why = why


def clean_name(name: str, source: str, *, what: str = "entry") -> str:
    """Archive member name → tree-relative path ('' = the root itself); refuses absolute names and `..`."""
    if "\0" in name:
        raise UnsafeEntry(source, name, "NUL byte in name")
    if name.startswith("/"):
        raise UnsafeEntry(source, name, f"absolute path in {what}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeEntry(source, name, f"parent reference (..) in {what}")
    return "/".join(parts)


class Extractor:
    """Writes members into `root` (an existing, empty directory we own)."""

    def __init__(
        self,
        root: Path,
        *,
        source: str,
        allow_devices: bool | None = None,
        keep_owner: bool | None = None,
        limits: Limits | None = None,
        source_bytes: int = 0,
    ) -> None:
        self.root = root
        self.source = source
        self.limits = limits or Limits()
        self.source_bytes = source_bytes  # the archive's size on disk; 0 = not an archive (no ratio check)
        self.allow_devices = os.geteuid() == 0 if allow_devices is None else allow_devices
        self.keep_owner = os.geteuid() == 0 if keep_owner is None else keep_owner
        self.skipped_devices = 0
        self.count = 0
        self.bytes = 0
        self._dirs: dict[str, tarfile.TarInfo] = {}
        self._layer: set[str] | None = None
        self._root_fd = os.open(root, _DIR_FLAGS)

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ safe path walking
    @contextmanager
    def _parent(self, rel: str, name: str, *, create: bool = True) -> Iterator[tuple[int, str]]:
        """(descriptor of rel's parent directory, basename), never following a symlink on the way."""
        parts = rel.split("/")
        fd = os.dup(self._root_fd)
        try:
            for i, part in enumerate(parts[:-1]):
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        where = "/".join(parts[: i + 1])
                        kind = "a symlink" if _is_link(fd, part) else "not a directory"
                        raise UnsafeEntry(self.source, name, f"path goes through {where!r}, which is {kind}") from None
                    raise
                os.close(fd)
                fd = nfd
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def _clear(self, fd: int, base: str, *, keep_dir: bool) -> bool:
        """Remove what is at base (unless it is a directory and keep_dir); True if a directory remains."""
        try:
            st = os.stat(base, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(base, dir_fd=fd)
        else:
            os.unlink(base, dir_fd=fd)
        return False

    # ------------------------------------------------------------------ members
    def begin_layer(self) -> None:
        """OCI: a new layer starts; opaque markers clear only what lower layers put there."""
        self._layer = set()

    def add(self, member: tarfile.TarInfo, data: BinaryIO | None) -> None:
        rel = clean_name(member.name, self.source)
        base_name = posixpath.basename(rel)
        if self._layer is not None and base_name.startswith(WHITEOUT):
            self._whiteout(rel, member.name)
            return
        if rel == "":
            if member.isdir():
                self._dirs[""] = member
            return
        self.count += 1
        self._check_caps(member, data)
        if self._layer is not None:
            self._layer.add(rel)
        if member.isdev() and not member.isfifo() and not self.allow_devices:
            self.skipped_devices += 1
            return
        if member.issym():
            target = member.linkname
            if "\0" in target:
                raise UnsafeEntry(self.source, member.name, "NUL byte in symlink target")
            if not target.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
                if resolved == ".." or resolved.startswith("../"):
                    raise UnsafeEntry(self.source, member.name, f"symlink pointing out of the capsule ({target})")
        elif member.islnk():
            target_rel = clean_name(member.linkname, self.source, what="hard link target")
            if not target_rel:
                raise UnsafeEntry(self.source, member.name, "hard link to the capsule root")
        elif not (member.isreg() or member.isdir() or member.isdev()):
            raise UnsafeEntry(self.source, member.name, f"unsupported member type {member.type!r}")
        with self._parent(rel, member.name) as (fd, base):
            is_dir = self._clear(fd, base, keep_dir=member.isdir())
            if not member.isdir():
                self._dirs.pop(rel, None)
            if member.isdir():
                if not is_dir:
                    os.mkdir(base, 0o700, dir_fd=fd)
                self._dirs[rel] = member
            elif member.isreg():
                self._file(fd, base, member, data)
            elif member.issym():
                os.symlink(member.linkname, base, dir_fd=fd)
                self._owner_times(fd, base, member, link=True)
            elif member.islnk():
                self._hardlink(fd, base, member)
            elif member.isfifo():
                os.mkfifo(base, 0o600, dir_fd=fd)
                self._owner_times(fd, base, member)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=fd)
                self._owner_times(fd, base, member)

    def _check_caps(self, member: tarfile.TarInfo, data: BinaryIO | None) -> None:
        lim = self.limits
        if self.count > lim.max_files:
            raise ImportLimitExceeded(f"{self.source}: more than {lim.max_files:,} files; refusing the import")
        if not member.isreg() or member.islnk():
            return
        total = self.bytes + member.size
        if total > lim.max_bytes:
            raise ImportLimitExceeded(
                f"{self.source}: unpacks to more than {lim.max_bytes:,} bytes (at {member.name!r}); refusing the import"
            )
        if self.source_bytes and total > lim.max_ratio * self.source_bytes + lim.ratio_slack:
            raise ImportLimitExceeded(
                f"{self.source}: {total:,} bytes unpacked from a {self.source_bytes:,}-byte archive (more than"
                f" {lim.max_ratio:g}x at {member.name!r}): a decompression bomb? refusing the import"
            )
        if member.size >= lim.sparse_min and _sparse(member, data):
            raise ImportLimitExceeded(
                f"{self.source}: {member.name!r} is a sparse file of {member.size:,} bytes; refusing the import"
                " (it would be unpacked as zeros)"
            )

    def _file(self, fd: int, base: str, member: tarfile.TarInfo, data: BinaryIO | None) -> None:
        out = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
        try:
            if data is not None and member.size:
                with open(out, "wb", closefd=False) as fh:
                    shutil.copyfileobj(data, fh, 1 << 20)
                    written = fh.tell()
                if written != member.size:
                    raise CapsuleError(f"{self.source}: {member.name!r} is truncated ({written} of {member.size})")
                self.bytes += written
            if self.keep_owner:
                os.fchown(out, member.uid, member.gid)
            os.fchmod(out, member.mode & 0o7777)  # after chown, which clears set-id bits
            os.utime(out, (member.mtime, member.mtime))
        finally:
            os.close(out)

    def _hardlink(self, fd: int, base: str, member: tarfile.TarInfo) -> None:
        target_rel = clean_name(member.linkname, self.source, what="hard link target")
        try:
            with self._parent(target_rel, member.name, create=False) as (tfd, tbase):
                st = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafeEntry(self.source, member.name, f"hard link to non-file {member.linkname!r}")
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise UnsafeEntry(self.source, member.name, f"hard link to missing {member.linkname!r}") from None

    def _owner_times(self, fd: int, base: str, member: tarfile.TarInfo, *, link: bool = False) -> None:
        if self.keep_owner:
            os.chown(base, member.uid, member.gid, dir_fd=fd, follow_symlinks=False)
        if not link:
            # Only FIFOs and device nodes we just created get here (never a symlink), so following is safe;
            # Linux has no lchmod.
            os.chmod(base, member.mode & 0o7777, dir_fd=fd)
        os.utime(base, (member.mtime, member.mtime), dir_fd=fd, follow_symlinks=False)

    def _whiteout(self, rel: str, name: str) -> None:
        parent, base = posixpath.split(rel)
        if base == OPAQUE:
            assert self._layer is not None
            try:
                with self._parent(f"{parent}/x" if parent else "x", name, create=False) as (fd, _):
                    for child in os.listdir(fd):
                        if (f"{parent}/{child}" if parent else child) not in self._layer:
                            self._clear(fd, child, keep_dir=False)
            except FileNotFoundError:
                pass
            return
        victim = base[len(WHITEOUT) :]
        if not victim or victim in (".", ".."):
            raise UnsafeEntry(self.source, name, "malformed whiteout")
        try:
            with self._parent(posixpath.join(parent, victim), name, create=False) as (fd, vbase):
                self._clear(fd, vbase, keep_dir=False)
        except FileNotFoundError:
            pass
        target = posixpath.join(parent, victim)
        self._dirs = {k: v for k, v in self._dirs.items() if k != target and not k.startswith(target + "/")}

    def finish(self) -> None:
        """Directory modes, owners and times last (children were written into them first), deepest first."""
        for rel in sorted(self._dirs, key=lambda r: r.count("/") if r else -1, reverse=True):
            member = self._dirs[rel]
            try:
                if rel:
                    with self._parent(rel, member.name, create=False) as (fd, base):
                        dfd = os.open(base, _DIR_FLAGS, dir_fd=fd)
                else:
                    dfd = os.dup(self._root_fd)
            except (FileNotFoundError, NotADirectoryError, UnsafeEntry):
                continue  # replaced by a later member
            try:
                if self.keep_owner:
                    os.fchown(dfd, member.uid, member.gid)
                # Without root we must keep access to our own tree (to repack it): owner rwx stays set.
                os.fchmod(dfd, (member.mode & 0o7777) | (0 if self.keep_owner else 0o700))
                os.utime(dfd, (member.mtime, member.mtime))
            finally:
                os.close(dfd)


def _sparse(member: tarfile.TarInfo, data: BinaryIO | None) -> bool:
    """A tar sparse member, or a source file (directory import) with less than 1/8 of its size allocated."""
    if member.issparse():
        return True
    try:
        st = os.fstat(data.fileno()) if data is not None else None
    except (AttributeError, OSError, ValueError):  # a tar stream member has no descriptor of its own
        return False
    return st is not None and stat.S_ISREG(st.st_mode) and st.st_blocks * 512 < st.st_size // 8


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
