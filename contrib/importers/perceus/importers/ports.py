"""Switch ports → nodes: stack member / module / port order, only edge ports, one MAC per node port.

An edge (access) port has the one node behind it.  A link aggregate, or a port that learned many MACs
(across all VLANs), leads to another switch: an uplink, skipped.  A port with exactly two MACs in the
provisioning VLAN is ambiguous (a node and its BMC on a shared port, or a little hub): an error for that
port only, the other ports still count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from perceus.importers.records import Collector, Location

_AGGREGATE = re.compile(r"^(po|port-channel|ae|bundle-ether|lag|trk|bond|vpc)\d", re.IGNORECASE)
_NUMBERS = re.compile(r"\d+")
_LOGICAL = re.compile(r"^(vlan|cpu|router|sup-|lo\d|loopback|tunnel|vx|nve|mgmt|management)", re.IGNORECASE)
UPLINK_MACS = 3  # this many MACs on one port (in any VLAN) and it is an uplink, not a node port


def port_key(port: str) -> tuple[tuple[int, ...], str]:
    """Gi1/0/2 before Gi1/0/10 before Te1/1/1 before Gi2/0/1: the numbers first, the type name last."""
    return tuple(int(n) for n in _NUMBERS.findall(port)), port.lower()


def is_aggregate(port: str) -> bool:
    return bool(_AGGREGATE.match(port))


def is_logical(port: str) -> bool:
    """VLAN interfaces, the CPU, tunnels, the management port: no node is plugged into them."""
    return bool(_LOGICAL.match(port))


@dataclass(frozen=True)
class Entry:
    """A MAC the table lists on a port (learned or static), in a VLAN (`in_vlan`: the one being imported)."""

    port: str
    mac: str
    where: Location
    in_vlan: bool = True


def emit(entries: list[Entry], out: Collector) -> None:
    """Nodes in port order; aggregates and many-MAC ports are uplinks; two MACs on a port are an error."""
    all_macs: dict[str, set[str]] = {}
    by_port: dict[str, list[Entry]] = {}
    for entry in entries:
        all_macs.setdefault(entry.port, set()).add(entry.mac)
        if not entry.in_vlan:
            continue
        if is_aggregate(entry.port):
            out.skip(entry.where, f"{entry.port}: link aggregate (uplink), not a node port")
            continue
        bucket = by_port.setdefault(entry.port, [])
        if all(e.mac != entry.mac for e in bucket):
            bucket.append(entry)
    for port in sorted(by_port, key=port_key):
        bucket = by_port[port]
        first = bucket[0].where
        where = Location(first.file, first.line, max(e.where.line for e in bucket))
        if len(all_macs[port]) >= UPLINK_MACS:
            out.skip(where, f"{port}: {len(all_macs[port])} MACs learned, an uplink or trunk, not a node port")
        elif len(bucket) > 1:
            macs = ", ".join(e.mac for e in bucket)
            out.error(where, f"{port}: two MACs in the VLAN ({macs}); which one is the node is unknown")
        else:
            out.node(bucket[0].where, bucket[0].mac)


def is_multicast(nodeid: str) -> bool:
    """Group addresses (I/G bit set) are never a node's NIC."""
    try:
        return bool(int(nodeid[:2], 16) & 1)
    except ValueError:
        return False
