"""Reading input files: gzip (also truncated or concatenated), BOMs, CRLF, and a missing final newline."""

from __future__ import annotations

import codecs
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from perceus.errors import PerceusError
from perceus.importers.records import Collector, Location

_GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class UnreadableFile(PerceusError):
    """A file named on the command line cannot be read at all."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """One input file: its bytes (after gunzip) and its text split into lines (line N is lines[N-1])."""

    path: str
    data: bytes
    text: str
    truncated: bool

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def at(self, line: int, last: int = 0) -> Location:
        return Location(self.path, line, last if last > line else 0)


def gunzip(data: bytes) -> tuple[bytes, bool]:
    """Decompress every gzip member; returns what could be recovered and whether the stream was cut short."""
    chunks: list[bytes] = []
    rest = data
    while rest[:2] == _GZIP_MAGIC:
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunks.append(inflater.decompress(rest))
        except zlib.error:
            return b"".join(chunks), True
        if not inflater.eof:
            return b"".join(chunks), True
        rest = inflater.unused_data.lstrip(b"\0")  # some tools pad rotated logs with NULs
    return b"".join(chunks), bool(rest)


def decode(data: bytes) -> str:
    """Text of a file: BOM honoured, invalid UTF-8 replaced (never fatal), line ends made LF."""
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], name
            break
    text = data.decode(encoding, errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load(path: str, out: Collector | None = None) -> Source:
    """Read `path` (raises OSError); a truncated gzip is reported, its partial last line dropped."""
    raw = Path(path).read_bytes()
    truncated = False
    if raw[:2] == _GZIP_MAGIC:
        raw, truncated = gunzip(raw)
    text = decode(raw)
    if truncated:
        cut = text.rfind("\n")
        text = text[: cut + 1] if cut >= 0 else ""
        if out is not None:
            line = text.count("\n") + 1
            out.error(Location(path, line), "truncated input: compressed stream ends early (partial line dropped)")
    return Source(path, raw, text, truncated)


def open_sources(paths: list[str], out: Collector) -> list[Source]:
    """Load every file named on the command line; one that cannot be read stops the import."""
    sources = []
    for path in paths:
        try:
            sources.append(load(path, out))
        except OSError as err:
            raise UnreadableFile(path, err.strerror or str(err)) from err
    return sources


def resolve_include(path: str, including: str) -> str:
    """An include's path: relative to the including file; an absolute one is looked for beside it first
    (/etc/dhcp/hosts.d/r1.conf → <dir>/hosts.d/r1.conf or <dir>/r1.conf), as a copied config tree has it."""
    here = os.path.dirname(including)
    if not os.path.isabs(path):
        return os.path.join(here, path)
    parts = [p for p in path.split("/") if p]
    for start in range(len(parts)):
        beside = os.path.join(here, *parts[start:])
        if os.path.exists(beside):
            return beside
    return path
