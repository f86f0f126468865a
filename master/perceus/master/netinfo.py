"""The master's own addresses (for VNFSMASTER and the default bus address)."""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCGIFADDR = 0x8915


def interface_ipv4(device: str) -> str:
    """IPv4 address of `device`, or "" if it has none / does not exist."""
    if not device:
        return ""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", device.encode()[:15]))
        except OSError:
            return ""
    return socket.inet_ntoa(packed[20:24])
