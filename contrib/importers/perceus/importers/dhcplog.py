"""DHCP request messages of ISC dhcpd and dnsmasq, and first-seen ordering of the MACs they carry."""

from __future__ import annotations

import re
from dataclasses import dataclass

from perceus.importers.records import Collector, Location

# dhcpd: "DHCPDISCOVER from 00:11:22:33:44:55 (n01) via eth0", "DHCPREQUEST for 10.0.0.5 (10.0.0.1) from …",
# "BOOTREQUEST from …"; dnsmasq: "DHCPDISCOVER(eth0) [10.0.0.5] 00:11:22:33:44:55", "DHCPREQUEST(eth0) …".
_DHCPD = re.compile(r"\b(DHCPDISCOVER|DHCPREQUEST|BOOTREQUEST)\b(?: for \S+(?: \([^)]*\))?)? from (\S+)")
_DNSMASQ = re.compile(r"\b(DHCPDISCOVER|DHCPREQUEST)\([^)]*\)\s+(?:\d+\.\d+\.\d+\.\d+\s+)?(\S+)")


def request_mac(message: str) -> str | None:
    """The client hardware address of a DHCP request line, as written; None for every other line."""
    match = _DHCPD.search(message) or _DNSMASQ.search(message)
    return match.group(2).rstrip(",;:") if match else None


@dataclass(frozen=True)
class Sighting:
    """A request seen at `time` (seconds since the epoch; ties keep input order)."""

    time: float
    order: int
    where: Location
    mac: str


def first_seen(sightings: list[Sighting], out: Collector) -> None:
    """One node per MAC, in the order each MAC was first seen; repeats are the normal DHCP chatter."""
    seen: set[str] = set()
    for sighting in sorted(sightings, key=lambda s: (s.time, s.order)):
        nodeid = out.nodeid(sighting.where, sighting.mac)
        if nodeid is None or nodeid in seen:
            continue
        seen.add(nodeid)
        out.node(sighting.where, nodeid)
