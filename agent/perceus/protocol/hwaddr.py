"""Hardware address (NodeID) normalisation shared by master, agent and importers.

A NodeID is the upper-case, colon-separated hardware address, as in Perceus 1.x.  Unlike the original
(spec §3.3, §13) we accept only hex digits and never strip a leading ``01`` octet from a real 6-octet MAC:
``01:`` is removed only from a 7-octet DHCP client-id (hardware type 1 + MAC).  InfiniBand (IPoIB) uses
20-octet addresses; their client-ids (``ff:00:00:00:00:00:02:00:00:02:c9:00:`` + 8-octet GUID, 19+ octets)
are recognised too, and the port GUID's 20-octet form is kept whole.
"""

from __future__ import annotations

import re

from perceus.errors import InvalidHardwareAddress

_SEPARATORS = re.compile(r"[:\-.\s]")
# Already canonical (the hot path: agents send NodeIDs in this form).
_CANONICAL = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}(?:(?::[0-9A-F]{2}){14})?")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")

ETHER_LEN = 6
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
    """Return the canonical NodeID (``AA:BB:CC:DD:EE:FF`` or 20 octets) or raise InvalidHardwareAddress."""
    if _CANONICAL.fullmatch(value):
        return value
    octets = _octets(value)
    if not all(_HEX.match(o) for o in octets):
        raise InvalidHardwareAddress(value)
    if len(octets) == ETHER_LEN + 1 and octets[0] == "01":
        octets = octets[1:]  # DHCP client-id: hardware type 1 (Ethernet) + MAC
    if len(octets) not in (ETHER_LEN, IPOIB_LEN):
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
