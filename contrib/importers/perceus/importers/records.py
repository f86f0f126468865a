"""Parsed node records and the problems found while parsing, each tied to a file and line (range)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from perceus.errors import InvalidHardwareAddress
from perceus.importers.hwid import NotAHardwareAddress, node_id


def is_ipv4(text: str) -> bool:
    """True for a dotted-quad IPv4 address (what a record's `ip` must be; names are never resolved)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Location:
    """Where something came from: a file and a line, or an inclusive line range when `last` > `line`."""

    file: str
    line: int
    last: int = 0

    def span(self, last: int) -> Location:
        """This location widened to end at `last`."""
        return Location(self.file, self.line, last if last > self.line else 0)

    def as_json(self) -> dict[str, object]:
        if self.last > self.line:
            return {"file": self.file, "lines": [self.line, self.last]}
        return {"file": self.file, "line": self.line}

    def __str__(self) -> str:
        if self.last > self.line:
            return f"{self.file}:{self.line}-{self.last}"
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Bmc:
    """A node's baseboard management controller as the source names it (never its password)."""

    address: str
    username: str = ""

    def as_json(self) -> dict[str, str]:
        return {"address": self.address, "username": self.username}


@dataclass(frozen=True)
class NodeRecord:
    """One node as a source describes it; `hostname` is empty when the source has no names."""

    where: Location
    mac: str
    hostname: str = ""
    ip: str = ""
    group: str = ""
    vnfs: str = ""
    bmc: Bmc | None = None


@dataclass(frozen=True)
class Problem:
    """An error (the input is wrong) or a notice (a record that is not a node was skipped)."""

    where: Location
    reason: str

    def as_json(self) -> dict[str, object]:
        return {**self.where.as_json(), "reason": self.reason}


@dataclass
class ParseResult:
    """Everything one parse produced, in source order."""

    nodes: list[NodeRecord] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ParseOptions:
    """Options some formats use: the VLAN to read from a switch table."""

    vlan: str | None = None


# Config files (dhcpd.conf, dnsmasq, Kea, ethers) list everything that takes a lease: a BMC, a switch or a
# PDU there is told apart only by its name.  Sources with an object type (Rocks, xCAT, Warewulf) use that.
_BMC_NAME = re.compile(r"^(ipmi|bmc|idrac|ilo|imm|xcc)([-_.]|\d)|[-_.](ipmi|bmc|idrac|ilo|imm|xcc)\d*$", re.I)
_DEVICE_NAME = re.compile(r"^(pdu|switch|sw|ethsw|ibsw|ups)([-_.]|\d)|[-_.](pdu|switch|sw|ups)\d*$", re.I)


def not_a_node(hostname: str) -> str | None:
    """Why a host name names no provisioned node (a BMC, a switch, a PDU), or None."""
    label = first_label(hostname)
    if _BMC_NAME.search(label):
        return f"{label}: a BMC/IPMI interface, not a node"
    if _DEVICE_NAME.search(label):
        return f"{label}: a switch or PDU, not a node"
    return None


def drop_other_interfaces(result: ParseResult) -> None:
    """`n01-ib0`, `n01-eth1` beside `n01`: another interface of that node (on another subnet), not a node."""
    names = {rec.hostname.lower() for rec in result.nodes if rec.hostname}
    kept: list[NodeRecord] = []
    for rec in result.nodes:
        base = re.split(r"[-_]", rec.hostname.lower())
        owner = next(("-".join(base[:i]) for i in range(len(base) - 1, 0, -1) if "-".join(base[:i]) in names), "")
        if owner and owner != rec.hostname.lower():
            result.skipped.append(Problem(rec.where, f"{rec.hostname}: another interface of node {owner}, not a node"))
        else:
            kept.append(rec)
    result.nodes = kept


def first_label(name: str) -> str:
    """The host name's first DNS label: what Perceus calls a node name."""
    return name.strip().strip("\"'").split(".", 1)[0].strip()


class Collector:
    """What parsers write into: checks MACs on the way in so every parser reports bad ones alike."""

    def __init__(self) -> None:
        self.result = ParseResult()

    def node(
        self,
        where: Location,
        mac: str,
        *,
        hostname: str = "",
        ip: str = "",
        group: str = "",
        vnfs: str = "",
        bmc: Bmc | None = None,
    ) -> None:
        """Add a node; an address that is not a MAC/GUID/client-id becomes an error instead."""
        nodeid = self.nodeid(where, mac)
        if nodeid is not None:
            self.result.nodes.append(
                NodeRecord(where, nodeid, first_label(hostname), ip.strip(), group.strip(), vnfs.strip(), bmc)
            )

    def host(self, where: Location, mac: str, *, hostname: str = "", ip: str = "") -> None:
        """A lease reservation of a config file: a node unless its name says BMC, switch or PDU."""
        reason = not_a_node(hostname) if hostname else None
        if reason is not None:
            self.skip(where, reason)
        else:
            self.node(where, mac, hostname=hostname, ip=ip)

    def nodeid(self, where: Location, mac: str) -> str | None:
        """The normalised address, or None after reporting it as invalid."""
        try:
            return node_id(mac)
        except NotAHardwareAddress as err:
            self.skip(where, f"{err.what} {mac.strip()!r}: identifies a DHCP client, not its hardware (not a node)")
            return None
        except InvalidHardwareAddress:
            self.error(where, f"invalid MAC address {mac.strip()!r}")
            return None

    def error(self, where: Location, reason: str) -> None:
        self.result.errors.append(Problem(where, reason))

    def skip(self, where: Location, reason: str) -> None:
        self.result.skipped.append(Problem(where, reason))
