"""Hardware address (NodeID) normalisation shared by master, agent and importers.

A NodeID is the upper-case, colon-separated hardware address, as in Perceus 1.x.  Unlike the original
(docs/perceus1-reference.md) we accept only hex digits and never strip a leading ``01`` octet from a real
6-octet MAC: ``01:`` is removed only from a 7-octet DHCP client-id (hardware type 1 + MAC).  InfiniBand has no
6-octet MAC: what names a port for good is its 8-octet port GUID, and every form a node or a tool writes carries
it in its last 8 octets (the 20-octet IPoIB address: queue pair number + GID, whose interface id is the GUID;
the RFC 4390 client-id, 20 octets from type 255 on).  So an IB NodeID is the GUID, the same one the importers
produce from an xCAT GUID or a dhcpd.conf client-id.
"""

from __future__ import annotations

import re

from perceus.errors import InvalidHardwareAddress

_SEPARATORS = re.compile(r"[:\-.\s]")
# Already canonical (the hot path: agents send NodeIDs in this form).
_CANONICAL = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}(?:(?::[0-9A-F]{2}){2})?")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")

ETHER_LEN = 6
GUID_LEN = 8  # InfiniBand port GUID: the NodeID of an IB port
IPOIB_LEN = 20


def _octets(value: str) -> list[str]:
    text = value.strip()
    if not text:
        raise InvalidHardwareAddress(value)
    if _SEPARATORS.search(text):
        parts = [p for p in _SEPARATORS.split(text) if p != ""]
        if "." in text and all(len(p) == 4 for p in parts):  # Cisco style aabb.ccdd.eeff
            joined = "".join(parts)
            return [joined[i : i + 2] for i in range(0, len(joined), 2)]
        if not all(1 <= len(p) <= 2 for p in parts):
            raise InvalidHardwareAddress(value)
        return [p.zfill(2) for p in parts]
    if len(text) % 2:
        raise InvalidHardwareAddress(value)
    return [text[i : i + 2] for i in range(0, len(text), 2)]


def normalize(value: str) -> str:
    """Return the canonical NodeID (a 6-octet MAC or an 8-octet IB port GUID) or raise InvalidHardwareAddress."""
    if _CANONICAL.fullmatch(value):
        return value
    octets = _octets(value)
    if not all(_HEX.match(o) for o in octets):
        raise InvalidHardwareAddress(value)
    if len(octets) == ETHER_LEN + 1 and octets[0] == "01":
        octets = octets[1:]  # DHCP client-id: hardware type 1 (Ethernet) + MAC
    elif len(octets) == IPOIB_LEN:
        octets = octets[-GUID_LEN:]  # IPoIB address or RFC 4390 client-id: the port GUID at the end
    if len(octets) not in (ETHER_LEN, GUID_LEN):
        raise InvalidHardwareAddress(value)
    return ":".join(o.upper() for o in octets)


def is_valid(value: str) -> bool:
    """True when `value` normalises to a NodeID."""
    try:
        normalize(value)
    except InvalidHardwareAddress:
        return False
    return True


def is_ethernet(nodeid: str) -> bool:
    """True for a 6-octet (Ethernet) NodeID."""
    return nodeid.count(":") == ETHER_LEN - 1


def pxe_name(nodeid: str) -> str:
    """The PXELINUX per-node file name: ``01-aa-bb-cc-dd-ee-ff``."""
    return "01-" + nodeid.lower().replace(":", "-")
