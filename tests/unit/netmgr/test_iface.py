"""Interface facts: IPv4 network by ioctl, IPv6 prefixes from /proc/net/if_inet6."""

from __future__ import annotations

import ipaddress

from perceus.master.netmgr.iface import ipv4_interface, ipv6_prefixes

IF_INET6 = """\
fd770000000000000000000000000001 05 40 00 80      br0
fe80000000000000fc54fffe00770001 05 40 20 80      br0
20010db8000000010000000000000002 05 30 00 80      br0
fd770000000000000000000000000002 05 40 00 80      br0
fd000000000000000000000000000002 04 40 00 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
"""


def test_ipv6_prefixes_global_and_ula_only() -> None:
    assert ipv6_prefixes("br0", IF_INET6) == [
        ipaddress.IPv6Network("fd77::/64"),
        ipaddress.IPv6Network("2001:db8::/48"),
    ]
    assert ipv6_prefixes("lo", IF_INET6) == []  # host scope
    assert ipv6_prefixes("nope", IF_INET6) == []


def test_ipv4_interface_of_loopback() -> None:
    assert ipv4_interface("lo") == ipaddress.IPv4Interface("127.0.0.1/8")


def test_ipv4_interface_missing() -> None:
    assert ipv4_interface("perceus-none0") is None
    assert ipv4_interface("") is None
    assert ipv4_interface("x" * 20) is None
