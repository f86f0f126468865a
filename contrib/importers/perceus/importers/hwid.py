"""Hardware addresses as sources write them → NodeIDs: MACs, DHCP client-ids, InfiniBand GUIDs; DUIDs refused.

InfiniBand has no 6-octet MAC.  What names a port for good is its 8-octet port GUID, and every form the
sources write carries it in its last 8 octets: the GUID itself (`0002:c903:00a1:b2c3`, `0x0002c903…`), the
20-octet IPoIB hardware address (4 octets of queue pair number + the 16-octet GID, whose interface id is the
GUID), and the RFC 4390 client-id (type 255, IAID, DUID-EN of the HCA vendor, GUID).  So all of them become
the GUID, and a GUID from xCAT and a client-id from dhcpd.conf name the same node.
"""

from __future__ import annotations

import re

from perceus.errors import InvalidHardwareAddress

ETHER_OCTETS = 6
GUID_OCTETS = 8
IPOIB_OCTETS = 20
_ETHERNET_HTYPE = "01"  # DHCP client-id type 1: an Ethernet MAC follows
_INFINIBAND_ARP_TYPE = "20"  # dnsmasq prints ARPHRD_INFINIBAND (32) before an IPoIB address
_CLIENT_ID_DUID = "FF"  # RFC 4361: type 255, IAID, DUID
_DUID_TYPES = ("0001", "0002", "0003", "0004")  # RFC 8415: LLT, EN, LL, UUID

_GROUPS = {4: (3, 4, 10), 6: (2,)}  # digits per group → how many groups make an address
_SEPARATORS = re.compile(r"[:\-.\s]")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


class NotAHardwareAddress(InvalidHardwareAddress):
    """A DHCP identifier that names a client but is no hardware address (a DUID): not a node's NodeID."""

    def __init__(self, value: str, what: str) -> None:
        super().__init__(value)
        self.args = (f"{what} {value!r} is not a hardware address",)
        self.what = what


def octets(value: str) -> list[str] | None:
    """Upper-case octets of an address in any common spelling, or None when it is not hex at all."""
    text = value.strip().strip("\"'")
    body = text[2:] if text[:2].lower() == "0x" else text
    parts = [p for p in _SEPARATORS.split(body) if p]
    if not parts or not all(_HEX.match(p) for p in parts):
        return None
    if len(parts) == 1:  # bare hex
        digits = parts[0]
        if len(digits) % 2:
            return None
        return [digits[i : i + 2].upper() for i in range(0, len(digits), 2)]
    width = len(parts[0])  # aabb.ccdd.eeff, 0002:c903:00a1:b2c3, HP's aabbcc-ddeeff
    if all(len(p) == width for p in parts) and len(parts) in _GROUPS.get(width, ()):
        joined = "".join(parts)
        return [joined[i : i + 2].upper() for i in range(0, len(joined), 2)]
    if not all(1 <= len(p) <= 2 for p in parts):
        return None
    return [p.zfill(2).upper() for p in parts]


def node_id(value: str) -> str:
    """Canonical NodeID: a 6-octet MAC or an 8-octet InfiniBand port GUID; raises InvalidHardwareAddress."""
    found = octets(value)
    if found is None:
        raise InvalidHardwareAddress(value)
    count = len(found)
    if count == ETHER_OCTETS + 1 and found[0] == _ETHERNET_HTYPE:
        found = found[1:]  # client-id of hardware type 1: the MAC
    elif count == IPOIB_OCTETS + 1 and found[0] == _INFINIBAND_ARP_TYPE:
        found = found[-GUID_OCTETS:]
    elif count == IPOIB_OCTETS:
        found = found[-GUID_OCTETS:]  # IPoIB address or RFC 4390 client-id: the port GUID at the end
    elif found[0] == _CLIENT_ID_DUID and count > ETHER_OCTETS:
        raise NotAHardwareAddress(value, "client-id with a DUID")
    elif count > GUID_OCTETS and "".join(found[:2]) in _DUID_TYPES:
        raise NotAHardwareAddress(value, "DUID")
    if len(found) not in (ETHER_OCTETS, GUID_OCTETS):
        raise InvalidHardwareAddress(value)
    return ":".join(found)
