"""NodeID of a peer without `nodeid=`: its hardware address from the kernel ARP table (1.x ref §5.3 step 1)."""

from __future__ import annotations

from pathlib import Path

from perceus.errors import InvalidHardwareAddress
from perceus.protocol import hwaddr

ARP_TABLE = Path("/proc/net/arp")
_COMPLETE = 0x2


def lookup(ip: str, device: str = "", table: Path = ARP_TABLE) -> str:
    """The normalised MAC for `ip` (on `device` when given), or "" when the kernel does not know it."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[0] != ip or (device and fields[5] != device):
            continue
        try:
            if not int(fields[2], 16) & _COMPLETE:
                continue
            return hwaddr.normalize(fields[3])
        except (ValueError, InvalidHardwareAddress):
            continue
    return ""
