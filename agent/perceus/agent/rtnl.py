"""A static IPv4 set-up over raw rtnetlink, stdlib only: link up (+MTU), address, default route; links from sysfs.

The runtime agent gets its address from stage one at kexec (`perceus.net=`) and needs no DHCP client, so it
need not import pyroute2 either: that import alone (which pulls in ssl, sqlite3, unittest and every netlink
family pyroute2 knows) took ~0.8 s of a bare runtime's ~1 s network step under QEMU TCG.  The three requests
here are what `ip link set up`, `ip addr replace` and `ip route replace default` send; each is acknowledged,
and a kernel error comes back as OSError with its errno.  DHCP (stage one) stays with pyroute2 (network.py).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
IFF_UP = 0x1
IFLA_MTU = 4
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY, RTA_OIF = 5, 4
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
ARPHRD_ETHER = 1
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr


@dataclass(frozen=True, slots=True)
class SysLink:
    """A network interface as sysfs shows it."""

    index: int
    name: str
    mac: str
    ether: bool


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:  # e.g. `carrier` of a link that is down: EINVAL
        return ""


def links(sysfs: Path = Path("/sys")) -> list[SysLink]:
    """Every interface but loopback, by name."""
    base = sysfs / "class" / "net"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out = []
    for name in names:
        index = _read(base / name / "ifindex")
        if name == "lo" or not index.isdigit():
            continue
        out.append(SysLink(int(index), name, _read(base / name / "address").upper(),
                           _read(base / name / "type") == str(ARPHRD_ETHER)))  # fmt: skip
    return out


def has_carrier(name: str, sysfs: Path = Path("/sys")) -> bool:
    return _read(sysfs / "class" / "net" / name / "carrier") == "1"


def _attr(kind: int, data: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


class Rtnl:
    """One NETLINK_ROUTE socket; every request waits for its acknowledgement."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.sock.close()

    def request(self, kind: int, flags: int, payload: bytes, what: str) -> None:
        """Send one request and wait for its ack; a negative ack raises OSError (errno, `what`)."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_HEADER.pack(_HEADER.size + len(payload), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
                       + payload)  # fmt: skip
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, _, msg_seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    break
                if msg_type == NLMSG_ERROR and msg_seq == seq:
                    (error,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                    if error:
                        raise OSError(-error, f"{what}: {os.strerror(-error)}")
                    return
                offset += (length + 3) & ~3

    def link_up(self, index: int, mtu: int = 0) -> None:
        payload = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
        if mtu:
            payload += _attr(IFLA_MTU, struct.pack("=I", mtu))
        self.request(RTM_NEWLINK, 0, payload, "link up")

    def replace_address(self, index: int, ip: str, prefixlen: int) -> None:
        iface = ipaddress.IPv4Interface(f"{ip}/{prefixlen}")
        local = iface.ip.packed
        payload = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        payload += _attr(IFA_LOCAL, local) + _attr(IFA_ADDRESS, local)
        if prefixlen < 31:
            payload += _attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, payload, f"address {ip}/{prefixlen}")

    def replace_default_route(self, gateway: str, index: int) -> None:
        payload = struct.pack("=8BI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                              RTN_UNICAST, 0)  # fmt: skip
        payload += _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed) + _attr(RTA_OIF, struct.pack("=i", index))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, payload, f"default route via {gateway}")
