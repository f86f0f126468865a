"""Hardware addresses as sources write them → NodeIDs; adds the InfiniBand forms hwaddr.normalize lacks."""

from __future__ import annotations

import re

from perceus.errors import InvalidHardwareAddress
from perceus.protocol.hwaddr import normalize

# A bare port GUID becomes the 20-octet DHCP client-id that IPoIB clients send (RFC 4390 with the
# Mellanox/OFED prefix), the form hwaddr.normalize keeps whole; so a GUID from xCAT or Warewulf and the
# client-id from dhcpd.conf give the same NodeID.
IPOIB_CLIENT_ID_PREFIX = "FF:00:00:00:00:00:02:00:00:02:C9:00"
GUID_HEX_DIGITS = 16
# dnsmasq prints non-Ethernet addresses with their ARP hardware type in front: 0x20 is InfiniBand.
_INFINIBAND_HTYPE = "20"
_IPOIB_HEX_DIGITS = 40

_SEPARATORS = re.compile(r"[:\-.\s]")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def _hex_digits(text: str) -> str | None:
    """All hex digits of an address written with 2- or 4-digit groups, or None when it is not one."""
    body = text[2:] if text[:2].lower() == "0x" else text
    parts = [p for p in _SEPARATORS.split(body) if p]
    if not parts or not all(_HEX.match(p) for p in parts):
        return None
    if len(parts) > 1 and not all(len(p) in (2, 4) for p in parts):
        return None
    return "".join(parts)


def node_id(value: str) -> str:
    """Canonical NodeID of a MAC, DHCP client-id, IPoIB address or InfiniBand port GUID."""
    text = value.strip().strip("\"'")
    try:
        return normalize(text)
    except InvalidHardwareAddress:
        digits = _hex_digits(text)
        if digits is None:
            raise InvalidHardwareAddress(value) from None
        if len(digits) == GUID_HEX_DIGITS:
            guid = ":".join(digits[i : i + 2] for i in range(0, GUID_HEX_DIGITS, 2))
            return normalize(f"{IPOIB_CLIENT_ID_PREFIX}:{guid}")
        if len(digits) == _IPOIB_HEX_DIGITS + 2 and digits.startswith(_INFINIBAND_HTYPE):
            return normalize(digits[2:])
        if len(digits) in (12, 40):  # 4-digit groups (0011:2233:4455) that normalize does not take
            return normalize(digits)
        raise InvalidHardwareAddress(value) from None
