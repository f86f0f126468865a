"""Switch ports → nodes: natural port order, uplinks and link aggregates skipped, one MAC per edge port."""

from __future__ import annotations

import re
from dataclasses import dataclass

from perceus.importers.records import Collector, Location

_AGGREGATE = re.compile(r"^(po|port-channel|ae|bundle-ether|lag|trk|bond)\d", re.IGNORECASE)
_PIECES = re.compile(r"(\d+)")


def natural_key(port: str) -> tuple[object, ...]:
    """Gi1/0/2 before Gi1/0/10; Juniper's unit suffix (ge-0/0/1.0) sorts with its port."""
    parts = _PIECES.split(port.lower())
    return tuple(int(p) if p.isdigit() else p for p in parts)


def is_aggregate(port: str) -> bool:
    return bool(_AGGREGATE.match(port))


@dataclass(frozen=True)
class Entry:
    """A learned MAC on a port, where the table said so."""

    port: str
    mac: str
    where: Location


def emit(entries: list[Entry], out: Collector) -> None:
    """Nodes in port order; a port that learned several MACs leads to another switch (or a hub): skipped."""
    by_port: dict[str, list[Entry]] = {}
    for entry in entries:
        nodeid = out.nodeid(entry.where, entry.mac)
        if nodeid is None:
            continue
        if is_aggregate(entry.port):
            out.skip(entry.where, f"{entry.port}: link aggregate (uplink), not a node port")
            continue
        bucket = by_port.setdefault(entry.port, [])
        if all(e.mac != nodeid for e in bucket):
            bucket.append(Entry(entry.port, nodeid, entry.where))
    for port in sorted(by_port, key=natural_key):
        bucket = by_port[port]
        if len(bucket) > 1:
            first = bucket[0].where
            where = Location(first.file, first.line, max(e.where.line for e in bucket))
            out.skip(where, f"{port}: {len(bucket)} MACs learned, an uplink or trunk, not a node port")
            continue
        out.node(bucket[0].where, bucket[0].mac)


def is_multicast(nodeid: str) -> bool:
    """Group addresses (I/G bit set) are never a node's NIC."""
    try:
        return bool(int(nodeid[:2], 16) & 1)
    except ValueError:
        return False
