"""Hardware address forms the sources use → NodeIDs."""

from __future__ import annotations

import pytest

from perceus.errors import InvalidHardwareAddress
from perceus.importers.hwid import node_id

GUID_ID = "FF:00:00:00:00:00:02:00:00:02:C9:00:00:02:C9:03:00:A1:B2:C3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00:1a:2b:3c:4d:5e", "00:1A:2B:3C:4D:5E"),
        ("001a.2b3c.4d5e", "00:1A:2B:3C:4D:5E"),
        ("001a:2b3c:4d5e", "00:1A:2B:3C:4D:5E"),
        ("1:0:1a:2b:3c:4d:5e", "00:1A:2B:3C:4D:5E"),  # DHCP client-id, hardware type 1
        ('"00:1a:2b:3c:4d:5e"', "00:1A:2B:3C:4D:5E"),
        ("0002:c903:00a1:b2c3", GUID_ID),  # port GUID as ibstat prints it
        ("0x0002c90300a1b2c3", GUID_ID),
        (GUID_ID.lower(), GUID_ID),
        # dnsmasq prints the ARP type (0x20, InfiniBand) before the 20-octet IPoIB address
        (
            "20:80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c3",
            "80:00:00:48:FE:80:00:00:00:00:00:00:00:02:C9:03:00:A1:B2:C3",
        ),
    ],
)
def test_forms(raw: str, expected: str) -> None:
    assert node_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "zz:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5e:6f:70:81", "0x12", "laptop"]
)
def test_invalid(raw: str) -> None:
    with pytest.raises(InvalidHardwareAddress):
        node_id(raw)
