"""What `perceus vnfs import` reads: a chroot directory, a (compressed) rootfs tar, an original Perceus
`.vnfs` capsule (1.x ref §9.1–9.2), or an image archive as `podman save` / `docker save` write it.

Each source feeds archive members to an Extractor (extract.py), which owns every safety check.  From a 1.x
`.vnfs` only `config` and `rootfs/` are taken: its `mount`/`umount`/`configure` executables and node scripts
are never run (1.x ran them as root on the master); we implement those verbs ourselves.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import zstandard

from perceus.errors import CapsuleError
from perceus.master.capsule import cpio_reader
from perceus.master.capsule.extract import Extractor, clean_name

KINDS = ("dir", "tar", "vnfs", "oci", "cpio")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_IMAGE_FIRST = re.compile(
    r"^(\./)?([0-9a-f]{64}(/|\.json$|$)|blobs(/|$)|oci-layout$|index\.json$|manifest\.json$|repositories$)"
)
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{64,128})$")
MAX_JSON = 4 << 20


@dataclass
class Source:
    """An import source; `config_text` is filled from a 1.x capsule's `config` while feeding."""

    kind: str
    path: Path
    config_text: str | None = None
    hybridize_text: str | None = None  # a 1.x capsule's `hybridize` list (capsule/hybrid.py)
    notes: list[str] = field(default_factory=list)

    def feed(self, ex: Extractor) -> None:
        if self.kind == "dir":
            self._feed_dir(ex)
        elif self.kind == "cpio":
            with ExitStack() as stack:
                src = _decompressed(self.path, stack)
                for member, data in cpio_reader.members(src, str(self.path)):
                    ex.add(member, data)
        elif self.kind in ("tar", "vnfs"):
            with ExitStack() as stack:
                tf = _open_stream(self.path, stack)
                self._feed_tar(ex, tf, vnfs=self.kind == "vnfs")
        else:
            self._feed_image(ex)
        ex.finish()

    # ------------------------------------------------------------------ directories
    def _feed_dir(self, ex: Extractor) -> None:
        root = self.path
        if (root / "config").is_file() and (root / "rootfs").is_dir():
            self.config_text = (root / "config").read_text(encoding="utf-8", errors="replace")
            if (root / "hybridize").is_file():
                self.hybridize_text = (root / "hybridize").read_text(encoding="utf-8", errors="replace")
            root = root / "rootfs"
            self.notes.append("read a capsule directory (config + rootfs/)")
        links: dict[tuple[int, int], str] = {}
        for rel, st, path in _walk(root):
            info = tarfile.TarInfo(rel)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
            mode = st.st_mode
            data: BinaryIO | None = None
            if stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    info.type, info.linkname = tarfile.LNKTYPE, links[key]
                else:
                    links[key] = rel
                    info.type, info.size = tarfile.REGTYPE, st.st_size
            elif stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(mode):
                info.type = tarfile.FIFOTYPE
            else:
                continue  # sockets
            if info.type == tarfile.REGTYPE:
                with open(path, "rb") as fh:
                    ex.add(info, fh)
            else:
                ex.add(info, data)

    # ------------------------------------------------------------------ tar streams
    def _feed_tar(self, ex: Extractor, tf: tarfile.TarFile, *, vnfs: bool) -> None:
        for member in tf:
            if vnfs:
                rel = clean_name(member.name, self.path.name)
                if rel == "config" and member.isreg():
                    fh = tf.extractfile(member)
                    assert fh is not None
                    self.config_text = fh.read(1 << 20).decode("utf-8", "replace")
                    continue
                if rel == "hybridize" and member.isreg():
                    fh = tf.extractfile(member)
                    assert fh is not None
                    self.hybridize_text = fh.read(1 << 20).decode("utf-8", "replace")
                    continue
                if rel != "rootfs" and not rel.startswith("rootfs/"):
                    continue  # capsule scripts, vnfs.img, nodescripts: not used (see module docstring)
                member.name = rel[len("rootfs/") :] if rel != "rootfs" else ""
                if member.islnk():
                    target = clean_name(member.linkname, self.path.name, what="hard link target")
                    member.linkname = target.removeprefix("rootfs/")
            ex.add(member, cast(BinaryIO, tf.extractfile(member)) if member.isreg() else None)
        if vnfs and self.config_text is None:
            raise CapsuleError(f"{self.path}: not a Perceus capsule (no config inside)")

    # ------------------------------------------------------------------ OCI / docker image archives
    def _feed_image(self, ex: Extractor) -> None:
        try:
            outer = tarfile.open(self.path, "r:*")  # noqa: SIM115 - closed by the `with` below
        except (tarfile.TarError, OSError) as exc:
            raise CapsuleError(f"{self.path}: cannot read image archive: {exc}") from None
        with outer:
            names = {clean_name(n, self.path.name): n for n in outer.getnames()}
            layers = _image_layers(self.path, outer, names)
            self.notes.append(f"applied {len(layers)} image layer(s)")
            for layer in layers:
                member = outer.getmember(names[layer])
                raw = outer.extractfile(member)
                if raw is None:
                    raise CapsuleError(f"{self.path}: layer {layer} is not a file")
                ex.begin_layer()
                with ExitStack() as stack:
                    self._feed_tar(ex, _open_fileobj(raw, stack, f"{self.path}:{layer}"), vnfs=False)


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, os.stat_result, Path]]:
    with os.scandir(root / rel if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        name = f"{rel}/{e.name}" if rel else e.name
        st = e.stat(follow_symlinks=False)
        yield name, st, Path(e.path)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, name)


def _open_fileobj(raw: IO[bytes], stack: ExitStack, where: str) -> tarfile.TarFile:
    """A streaming tar reader over `raw`, whatever its compression (gzip, bzip2, xz, zstd, none)."""
    head = raw.read(4)
    # Buffered: tarfile expects read(n) to return n bytes until EOF; a raw reader may return fewer.
    rest = cast(IO[bytes], io.BufferedReader(_Prefixed(head, raw), 1 << 20))
    try:
        if head == ZSTD_MAGIC:
            rest = stack.enter_context(zstandard.ZstdDecompressor().stream_reader(rest))
            return stack.enter_context(tarfile.open(fileobj=rest, mode="r|"))
        return stack.enter_context(tarfile.open(fileobj=rest, mode="r|*"))
    except (tarfile.TarError, zstandard.ZstdError) as exc:
        raise CapsuleError(f"{where}: not a tar archive: {exc}") from None


def _decompressed(path: Path, stack: ExitStack) -> IO[bytes]:
    """`path`'s bytes after gzip / bzip2 / xz / zstd decompression (chosen by magic), buffered."""
    try:
        raw: IO[bytes] = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - owned by the ExitStack
    except OSError as exc:
        raise CapsuleError(f"{path}: cannot open: {exc.strerror}") from None
    head = raw.read(6)
    rest = cast(IO[bytes], io.BufferedReader(_Prefixed(head, raw), 1 << 20))
    inner: Any
    if head.startswith(ZSTD_MAGIC):
        inner = zstandard.ZstdDecompressor().stream_reader(rest)
    elif head.startswith(b"\x1f\x8b"):
        inner = gzip.GzipFile(fileobj=rest)
    elif head.startswith(b"BZh"):
        inner = bz2.BZ2File(rest)
    elif head.startswith(b"\xfd7zXZ\x00"):
        inner = lzma.LZMAFile(rest)  # noqa: SIM115 - closed by the ExitStack callback
    else:
        return rest
    stack.callback(inner.close)
    return cast(IO[bytes], io.BufferedReader(inner, 1 << 20))


def _open_stream(path: Path, stack: ExitStack) -> tarfile.TarFile:
    try:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - owned by the ExitStack
    except OSError as exc:
        raise CapsuleError(f"{path}: cannot open: {exc.strerror}") from None
    return _open_fileobj(raw, stack, str(path))


class _Prefixed(io.RawIOBase):
    """`head` followed by the rest of `raw` (we sniffed the magic bytes off a non-seekable stream)."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(view))
        view[: len(data)] = data
        return len(data)


def _json(path: Path, outer: tarfile.TarFile, names: dict[str, str], rel: str) -> Any:
    if rel not in names:
        raise CapsuleError(f"{path}: image archive lacks {rel}")
    fh = outer.extractfile(outer.getmember(names[rel]))
    if fh is None:
        raise CapsuleError(f"{path}: {rel} is not a file")
    try:
        return json.loads(fh.read(MAX_JSON))
    except ValueError as exc:
        raise CapsuleError(f"{path}: {rel} is not valid JSON: {exc}") from None


def _blob(path: Path, digest: object) -> str:
    m = _DIGEST.match(digest) if isinstance(digest, str) else None
    if m is None:
        raise CapsuleError(f"{path}: bad blob digest {digest!r}")
    return f"blobs/{m.group(1)}/{m.group(2)}"


def _image_layers(path: Path, outer: tarfile.TarFile, names: dict[str, str]) -> list[str]:
    """Layer member names, lowest first: docker-archive `manifest.json`, else OCI `index.json`."""
    if "manifest.json" in names:
        manifest = _json(path, outer, names, "manifest.json")
        if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
            raise CapsuleError(f"{path}: manifest.json is not a docker-archive manifest")
        layers = manifest[0].get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise CapsuleError(f"{path}: manifest.json has no Layers list")
        out = [clean_name(x, path.name, what="layer") for x in layers]
    else:
        doc = _json(path, outer, names, "index.json")
        for _ in range(4):  # index → (nested index) → image manifest
            entries = doc.get("manifests") if isinstance(doc, dict) else None
            if not isinstance(entries, list):
                break
            if not entries:
                raise CapsuleError(f"{path}: empty OCI index")
            chosen = next(
                (
                    e
                    for e in entries
                    if isinstance(e, dict)
                    and isinstance(e.get("platform"), dict)
                    and e["platform"].get("architecture") in ("amd64", os.uname().machine)
                ),
                entries[0],
            )
            doc = _json(path, outer, names, _blob(path, chosen.get("digest") if isinstance(chosen, dict) else None))
        layers_raw = doc.get("layers") if isinstance(doc, dict) else None
        if not isinstance(layers_raw, list):
            raise CapsuleError(f"{path}: OCI manifest has no layers")
        out = [_blob(path, x.get("digest") if isinstance(x, dict) else None) for x in layers_raw]
    for layer in out:
        if layer not in names:
            raise CapsuleError(f"{path}: layer {layer} is missing from the archive")
    return out


def detect(path: Path, forced: str | None = None) -> Source:
    """Decide what `path` is (or take `forced`), without reading more than the first archive member."""
    if forced is not None:
        if forced not in KINDS:
            raise CapsuleError(f"unknown import format {forced!r} (use {', '.join(KINDS)})")
        return Source(forced, path)
    if path.is_dir():
        return Source("dir", path)
    if not path.is_file():
        raise CapsuleError(f"{path}: no such file or directory")
    if path.name.endswith(".vnfs"):
        return Source("vnfs", path)
    with ExitStack() as stack:
        try:
            magic = _decompressed(path, stack).read(6)
        except (OSError, EOFError, zstandard.ZstdError, ValueError):
            magic = b""
    if magic in cpio_reader.MAGICS:
        return Source("cpio", path)
    with ExitStack() as stack:
        tf = _open_stream(path, stack)
        try:
            first = tf.next()
        except tarfile.TarError as exc:
            raise CapsuleError(f"{path}: not a tar archive: {exc}") from None
    if first is not None and _IMAGE_FIRST.match(first.name):
        return Source("oci", path)
    return Source("tar", path)
