"""The ipaddr module's configuration language (1.x ref §8.3), parsed and evaluated on the master.

    <name-or-pattern> <dev>[(<OPT=V>&…)]:<ip>/<netmask>/<gateway> [<dev2>:…]    # comment

Perceus 1.x printed `echo` lines into ifcfg files on the node; here each line is parsed once (when the file
changes) and evaluated per node into typed per-interface settings that the agent writes itself.  Differences,
on purpose: a syntax error refuses the whole file with file:line (1.x emitted whatever it had parsed), a
computed address that is not an IPv4 address is refused rather than written.  Patterns keep 1.x's meaning
(`*` → `.*`, other regex syntax allowed, anchored) so existing files select the same nodes; a pattern that
is not a valid regex is a syntax error of its line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import ConfigError

log = structlog.get_logger("perceus.modules")

DEFAULT_RULES = "* eth0:[default]/[default] eth1:[default]/[default]/[default]\n"
_DEV = re.compile(r"^(?P<dev>[A-Za-z0-9][A-Za-z0-9_.-]{0,14})(?:\((?P<opts>[^()]*)\))?:(?P<rest>.+)$")
_OPT = re.compile(r"^[A-Z][A-Z0-9_]{0,31}=[^\s&]*$")
_ALIAS = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9]*?\d+)_(?P<num>\d+)$")
_BRACKET = re.compile(r"^\[(?P<body>[^\[\]]*)\]$")


@dataclass(frozen=True)
class DeviceRule:
    """One `<dev>(opts):<ip>/<netmask>/<gateway>` item as written."""

    device: str
    options: tuple[tuple[str, str], ...]
    ip: str
    netmask: str
    gateway: str


@dataclass(frozen=True)
class Line:
    """One line: who it is for (exact name or glob) and its devices."""

    pattern: str
    devices: tuple[DeviceRule, ...]
    where: str
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Interface:
    """What a node gets for one device: typed, validated, ready for the agent to write."""

    device: str
    alias_of: str = ""
    dhcp: bool = False
    address: str = ""
    prefixlen: int = 0
    gateway: str = ""
    options: Mapping[str, str] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "alias_of": self.alias_of,
            "dhcp": self.dhcp,
            "address": self.address,
            "prefixlen": self.prefixlen,
            "gateway": self.gateway,
            "options": dict(self.options),
        }


class MasterNet:
    """The master's own addresses, for `[default]` netmasks and gateways (a small ioctl adapter)."""

    def __init__(self, default_device: str, lookup: Callable[[str], tuple[str, str]] | None = None) -> None:
        self.default_device = default_device
        self._lookup = lookup or _ioctl_ipv4

    def address(self, device: str = "") -> str:
        return self._lookup(device or self.default_device)[0]

    def netmask(self, device: str = "") -> str:
        return self._lookup(device or self.default_device)[1]


def _ioctl_ipv4(device: str) -> tuple[str, str]:
    import fcntl
    import socket
    import struct

    if not device:
        return "", ""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for request in (0x8915, 0x891B):  # SIOCGIFADDR, SIOCGIFNETMASK
            try:
                packed = fcntl.ioctl(sock.fileno(), request, struct.pack("256s", device.encode()[:15]))
            except OSError:
                return "", ""
            out.append(socket.inet_ntoa(packed[20:24]))
    return out[0], out[1]


def parse_hosts(text: str) -> dict[str, str]:
    """/etc/hosts → name → first IPv4 address (IPv6 lines are skipped: ipaddr writes IPv4)."""
    names: dict[str, str] = {}
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            ipaddress.IPv4Address(words[0])
        except ValueError:
            continue
        for name in words[1:]:
            names.setdefault(name, words[0])
    return names


def _split_fields(rest: str) -> list[str]:
    """Split `ip/netmask/gateway` on slashes outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in rest:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "/" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse(text: str, source: str = "ipaddr") -> tuple[Line, ...]:
    """Parse the whole file or raise ConfigError with file:line."""
    lines: list[Line] = []
    for n, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) < 2:
            raise ConfigError(f"{words[0]!r} names no device", path=source, line=n)
        devices = []
        for word in words[1:]:
            m = _DEV.match(word)
            if not m:
                raise ConfigError(f"{word!r} is not DEV[(OPT=V&…)]:IP/NETMASK/GATEWAY", path=source, line=n)
            options: list[tuple[str, str]] = []
            for opt in filter(None, (m["opts"] or "").split("&")):
                if not _OPT.match(opt):
                    raise ConfigError(f"option {opt!r} is not KEY=VALUE", path=source, line=n)
                key, _, value = opt.partition("=")
                options.append((key, value))
            fields = _split_fields(m["rest"])
            if len(fields) > 3:
                raise ConfigError(f"{word!r} has more than IP/NETMASK/GATEWAY", path=source, line=n)
            fields += [""] * (3 - len(fields))
            devices.append(DeviceRule(m["dev"], tuple(options), *fields))
        try:
            regex = re.compile(words[0].replace("*", ".*"))
        except re.error as exc:
            raise ConfigError(f"pattern {words[0]!r}: {exc}", path=source, line=n) from None
        lines.append(Line(words[0], tuple(devices), f"{source}:{n}", regex))
    return tuple(lines)


def select(lines: tuple[Line, ...], nodename: str) -> list[Line]:
    """Pattern lines accumulate in order; a line naming the node exactly wins outright and stops (1.x)."""
    chosen: list[Line] = []
    for line in lines:
        if line.pattern == nodename:
            return [line]
        if line.regex is not None and line.regex.fullmatch(nodename):
            chosen.append(line)
    return chosen


def nodenum(nodename: str) -> str:
    """Trailing digits without leading zeros (`n0015` → `15`); "" when the name has none."""
    m = re.search(r"(\d+)$", nodename)
    return str(int(m.group(1))) if m else ""


@dataclass
class Evaluator:
    """Turns the selected lines into Interfaces for one node."""

    hosts: Mapping[str, str]
    net: MasterNet

    def interfaces(self, lines: tuple[Line, ...], nodename: str) -> list[Interface]:
        result: dict[str, Interface] = {}
        for line in select(lines, nodename):
            for rule in line.devices:
                iface = self._one(rule, nodename, line.where)
                result.pop(iface.device, None)  # the last matching line wins for a device (1.x rm + echo)
                result[iface.device] = iface
        return list(result.values())

    def _one(self, rule: DeviceRule, nodename: str, where: str) -> Interface:
        m = _ALIAS.match(rule.device)
        device, alias_of = (f"{m['base']}:{m['num']}", m["base"]) if m else (rule.device, "")
        options = dict(rule.options)
        if rule.ip.lower() == "dhcp":
            return Interface(device=device, alias_of=alias_of, dhcp=True, options=options)
        address = self._address(rule.ip, nodename, device, where)
        if not address:
            log.warning("ipaddr_host_unknown", node=nodename, device=device, field=rule.ip, where=where)
            return Interface(device=device, alias_of=alias_of, dhcp=True, options=options)
        netmask = self._netmask(rule.netmask, where)
        gateway = self._gateway(rule.gateway, where)
        try:
            ip = ipaddress.IPv4Address(address)
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen if netmask else 32
            if gateway:
                ipaddress.IPv4Address(gateway)
        except ValueError as exc:
            raise ConfigError(f"{nodename} {rule.device}: {exc}", path=where) from None
        return Interface(device=device, alias_of=alias_of, address=str(ip), prefixlen=prefix, gateway=gateway,
                         options=options)  # fmt: skip

    def _address(self, text: str, nodename: str, device: str, where: str) -> str:
        m = _BRACKET.match(text)
        if m:
            kind, _, arg = m["body"].partition(":")
            if kind not in ("default", "hostfile"):
                raise ConfigError(f"unknown address lookup {text!r}", path=where)
            name = arg.replace("NAME", nodename).replace("NIC", device.split(":", maxsplit=1)[0]) if arg else nodename
            return self.hosts.get(name, "")
        return text.replace("[nodenum]", nodenum(nodename))

    def _netmask(self, text: str, where: str) -> str:
        m = _BRACKET.match(text)
        if not m:
            return text
        kind, _, dev = m["body"].partition(":")
        device = dev if kind == "default" else kind  # `[default:DEV]` or `[DEV]`
        mask = self.net.netmask(device)
        if not mask:
            raise ConfigError(f"the master has no IPv4 netmask on {device or self.net.default_device!r}", path=where)
        return mask

    def _gateway(self, text: str, where: str) -> str:
        m = _BRACKET.match(text)
        if not m:
            return text
        kind, _, dev = m["body"].partition(":")
        if kind != "default":
            raise ConfigError(f"unknown gateway lookup {text!r}", path=where)
        ip = self.net.address(dev)
        if not ip:
            raise ConfigError(f"the master has no IPv4 address on {dev or self.net.default_device!r}", path=where)
        return ip


def load(path: Path) -> tuple[Line, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = DEFAULT_RULES
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    return parse(text, str(path))
