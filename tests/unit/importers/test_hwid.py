"""Hardware address forms the sources use → NodeIDs."""

from __future__ import annotations

import pytest

from perceus.errors import InvalidHardwareAddress
from perceus.importers.hwid import NotAHardwareAddress, node_id

GUID = "00:02:C9:03:00:A1:B2:C3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00:1a:2b:3c:4d:5e", "00:1A:2B:3C:4D:5E"),
        ("001a.2b3c.4d5e", "00:1A:2B:3C:4D:5E"),
        ("001a:2b3c:4d5e", "00:1A:2B:3C:4D:5E"),
        ("001a2b-3c4d5e", "00:1A:2B:3C:4D:5E"),  # HP ProCurve
        ("1:0:1a:2b:3c:4d:5e", "00:1A:2B:3C:4D:5E"),  # DHCP client-id, hardware type 1
        ('"00:1a:2b:3c:4d:5e"', "00:1A:2B:3C:4D:5E"),
        ("0002:c903:00a1:b2c3", GUID),  # port GUID as ibstat prints it
        ("0x0002c90300a1b2c3", GUID),
        ("ff:00:00:00:00:00:02:00:00:02:c9:00:00:02:c9:03:00:a1:b2:c3", GUID),  # RFC 4390 client-id
        ("80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c3", GUID),  # 20-octet IPoIB address
        # dnsmasq prints the ARP type (0x20, InfiniBand) before the 20-octet IPoIB address
        ("20:80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c3", GUID),
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


@pytest.mark.parametrize(
    "raw",
    [
        "ff:00:00:00:01:00:01:2c:3d:4e:5f:00:1a:2b:3c:4d:5e",  # RFC 4361 client-id: IAID + DUID-LLT
        "00:01:00:01:2c:3d:4e:5f:00:1a:2b:3c:4d:5e",  # DUID-LLT
        "00:03:00:01:00:1a:2b:3c:4d:5e",  # DUID-LL
    ],
)
def test_a_duid_is_not_a_mac(raw: str) -> None:
    with pytest.raises(NotAHardwareAddress):
        node_id(raw)
