"""Read-only facts about the provisioning interface: its IPv4 network and its routable IPv6 prefixes.

Only reads (ioctl, /proc): the network manager never configures interfaces itself.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
IF_INET6 = Path("/proc/net/if_inet6")
_SCOPE_GLOBAL = 0x00


def ipv4_interface(device: str) -> ipaddress.IPv4Interface | None:
    """The first IPv4 address of `device` with its prefix, or None (no device, no address)."""
    if not device or len(device.encode()) > 15:
        return None
    request = struct.pack("256s", device.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            addr = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
            mask = fcntl.ioctl(sock.fileno(), _SIOCGIFNETMASK, request)
        except OSError:
            return None
    return ipaddress.IPv4Interface(f"{socket.inet_ntoa(addr[20:24])}/{socket.inet_ntoa(mask[20:24])}")


def ipv6_prefixes(device: str, text: str | None = None) -> list[ipaddress.IPv6Network]:
    """Global-scope (incl. ULA) IPv6 networks on `device`, from /proc/net/if_inet6 (or `text`)."""
    if text is None:
        try:
            text = IF_INET6.read_text()
        except OSError:
            return []
    nets: list[ipaddress.IPv6Network] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6 or fields[5] != device:
            continue
        hexaddr, plen, scope = fields[0], int(fields[2], 16), int(fields[3], 16)
        if scope != _SCOPE_GLOBAL or len(hexaddr) != 32:
            continue
        addr = ipaddress.IPv6Address(int(hexaddr, 16))
        net = ipaddress.IPv6Network((addr, plen), strict=False)
        if net not in nets:
            nets.append(net)
    return nets
