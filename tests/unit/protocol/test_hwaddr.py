"""NodeID normalisation: the forms admins and tools write, and what Perceus 1.x got wrong."""

from __future__ import annotations

import pytest

from perceus.errors import InvalidHardwareAddress
from perceus.protocol import hwaddr

IPOIB = "80:00:00:48:FE:80:00:00:00:00:00:00:00:02:C9:03:00:0A:BC:DE"  # QPN + GID: 20 octets
IB = "00:02:C9:03:00:0A:BC:DE"  # the port GUID at its end: the NodeID


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("00:1e:67:ab:cd:ef", "00:1E:67:AB:CD:EF"),
        ("00-1E-67-AB-CD-EF", "00:1E:67:AB:CD:EF"),
        ("001e.67ab.cdef", "00:1E:67:AB:CD:EF"),
        ("001E67ABCDEF", "00:1E:67:AB:CD:EF"),
        ("0:1e:67:ab:cd:ef", "00:1E:67:AB:CD:EF"),
        ("01:00:1e:67:ab:cd:ef", "00:1E:67:AB:CD:EF"),  # DHCP client-id: type 1 + MAC
        ("01:02:03:04:05:06", "01:02:03:04:05:06"),  # a real MAC starting 01 is kept (1.x stripped it)
        (IPOIB.lower(), IB),
        (IB.lower(), IB),
        ("ff:00:00:00:00:00:02:00:00:02:c9:00:00:02:c9:03:00:0a:bc:de", IB),  # RFC 4390 client-id
        ("  52:54:00:12:34:56\n", "52:54:00:12:34:56"),
    ],
)
def test_normalize(raw: str, want: str) -> None:
    assert hwaddr.normalize(raw) == want


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "zz:zz:zz:zz:zz:zz",
        "00:1e:67:ab:cd",
        "02:00:1e:67:ab:cd:ef",  # 7 octets that are no type-1 client-id
        "00:1e:67:ab:cd:ef:00:11:22",
        "g0:1e:67:ab:cd:ef",
        "abc",
        "1:2:3",
    ],
)
def test_rejects(raw: str) -> None:
    with pytest.raises(InvalidHardwareAddress) as err:
        hwaddr.normalize(raw)
    assert "invalid hardware address" in str(err.value)
    assert not hwaddr.is_valid(raw)


def test_pxe_name() -> None:
    assert hwaddr.pxe_name("52:54:00:AA:BB:CC") == "01-52-54-00-aa-bb-cc"
    assert hwaddr.is_ethernet("52:54:00:AA:BB:CC") and not hwaddr.is_ethernet(IB)
