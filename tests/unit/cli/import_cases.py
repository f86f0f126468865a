"""The samples under tests/data/importers/ and what `perceus import` must make of each (one quirk a file)."""

from __future__ import annotations

from dataclasses import dataclass

Nodes = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Case:
    """A sample: the nodes as (MAC, hostname, IP) in order, error substrings in order, how many skipped."""

    fmt: str
    files: tuple[str, ...]
    nodes: Nodes
    errors: tuple[str, ...] = ()
    skipped: int | None = None
    args: tuple[str, ...] = ()
    bmc: tuple[tuple[str, str] | None, ...] = ()


def macs(prefix: str, *suffixes: str, first: int = 0) -> Nodes:
    """Nameless-source nodes: template names n0000, n0001 … in order."""
    return tuple((f"{prefix}{s}", f"n{first + i:04d}", "") for i, s in enumerate(suffixes))


CASES: list[Case] = [
    Case("mac-list", ("maclist/macs.txt",), macs("00:1A:2B:3C:4D:0", "1", "2", "3", "4")),
]
