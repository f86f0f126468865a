"""DHCP client requests in ISC dhcpd and dnsmasq log messages, and first-seen ordering of the MACs they carry.

Only what a client sends names a node: DHCPDISCOVER, DHCPREQUEST and BOOTP requests (dnsmasq logs the ones
it `ignored` too: exactly the unknown nodes an admin wants).  The server's answers (DHCPOFFER, DHCPACK, …)
and its start-up lines (`Listening on LPF/eth0/<mac>`) carry the server's or a repeated address and are not
requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from perceus.importers.records import Collector, Location

# dhcpd: "DHCPDISCOVER from 00:11:22:33:44:55 (n01) via eth0", "DHCPREQUEST for 10.0.0.5 (10.0.0.1) from …",
# "BOOTREQUEST from …"; dnsmasq: "DHCPDISCOVER(eth0) 00:11:22:33:44:55 ignored", "DHCPREQUEST(eth0) 10.0.0.5 …",
# "BOOTP(eth0) 10.0.0.5 00:11:…", in proxy-DHCP mode "PXE(eth0) 00:11:… proxy" (with log-dhcp a transaction
# number comes first).  DHCPv6 requests carry a DUID there, which is no hardware address (skipped).
_DHCPD = re.compile(r"\b(?:DHCPDISCOVER|DHCPREQUEST|BOOTREQUEST)(?: for \S+(?: \([^)]*\))?)? from (\S+)")
_DNSMASQ = re.compile(r"\b(?:DHCPDISCOVER|DHCPREQUEST|BOOTP|PXE)\([^)]*\)\s+(?:\d+\.\d+\.\d+\.\d+\s+)?(\S+)")
ELLIPSIS = "\u2026"  # journalctl and some viewers shorten long lines with it


_DHCP_SERVERS = re.compile(r"^(dhcpd\d?|dnsmasq(-dhcp)?)$")


def is_dhcp_server(program: str) -> bool:
    """True for the program names ISC dhcpd and dnsmasq log under (syslog tag, journal SYSLOG_IDENTIFIER)."""
    return bool(_DHCP_SERVERS.match(program))


def request_mac(message: str) -> str | None:
    """The client hardware address of a DHCP request message, as written; None for every other message."""
    match = _DHCPD.search(message) or _DNSMASQ.search(message)
    return match.group(1).rstrip(",;") if match else None


@dataclass(frozen=True)
class Sighting:
    """A request seen at `time` (seconds since the epoch, or a running number; ties keep input order)."""

    time: float
    order: int
    where: Location
    mac: str


def first_seen(sightings: list[Sighting], out: Collector) -> None:
    """One node per MAC, in the order each MAC was first seen; repeats are the normal DHCP chatter."""
    seen: set[str] = set()
    for sighting in sorted(sightings, key=lambda s: (s.time, s.order)):
        if ELLIPSIS in sighting.mac or sighting.mac.endswith("..."):
            out.skip(sighting.where, f"line shortened with '…' inside the address {sighting.mac!r}")
            continue
        nodeid = out.nodeid(sighting.where, sighting.mac)
        if nodeid is None or nodeid in seen:
            continue
        seen.add(nodeid)
        out.node(sighting.where, nodeid)
