"""Rocks / Platform OCS: `rocks list host interface`, `rocks dump`, and the MySQL dump of the cluster DB.

A Rocks host boots over its interface on the `private` subnet; interfaces on other subnets (public, ipmi,
ib …) are not the node.  A bonded private interface (`bond0`, module `bonding`, no MAC of its own) is the
node by its first slave's MAC (the slaves name it in their `channel`) with the bond's IP.  The frontend (its
own name, not appliance-rack-rank, and an interface on `public`), switches, PDUs and remote-management
appliances are not compute nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from perceus.importers.records import Collector, Location, ParseOptions
from perceus.importers.shellwords import shell_words
from perceus.importers.sniffing import has
from perceus.importers.source import Source
from perceus.importers.sqldump import Row, read_dump

# Appliances that are in the Rocks database but are not compute nodes Perceus could boot.
_NOT_NODES = re.compile(r"frontend|switch|power|remote management|pdu|^network$|^manager$", re.IGNORECASE)
_RACK_RANK = re.compile(r"^.+-\d+-\d+$")  # compute-0-3, login-1-0: every host Rocks installs
_PRIVATE = "private"
_EMPTY = re.compile(r"^-+$")  # Rocks prints an unset column as dashes


@dataclass
class _Iface:
    device: str
    where: Location
    mac: str = ""
    ip: str = ""
    subnet: str = ""
    module: str = ""
    channel: str = ""


@dataclass
class _Host:
    name: str
    where: Location
    group: str = ""
    ifaces: dict[str, _Iface] = field(default_factory=dict)


def _boot_iface(host: _Host) -> tuple[str, str] | str:
    """(MAC, IP) of the interface the host installs over, or why there is none."""
    ifaces = list(host.ifaces.values())
    if not any(i.subnet for i in ifaces):  # no subnets listed at all: the first interface with a MAC
        with_mac = [i for i in ifaces if i.mac]
        return (with_mac[0].mac, with_mac[0].ip) if with_mac else "no interface with a MAC"
    for iface in (i for i in ifaces if i.subnet == _PRIVATE):
        if iface.mac:
            return iface.mac, iface.ip
        if iface.device.startswith("bond") or iface.module == "bonding":
            slaves = [i for i in ifaces if i.channel == iface.device and i.mac]
            if slaves:
                return slaves[0].mac, iface.ip
            return f"bond {iface.device} on the private subnet has no slave with a MAC"
    return "no interface with a MAC on the private subnet"


def _not_a_node(host: _Host) -> str | None:
    if host.group and _NOT_NODES.search(host.group):
        return f"appliance {host.group!r} is not a compute node"
    appliance = host.name.split("-", 1)[0]
    if not host.group and _RACK_RANK.match(host.name) and _NOT_NODES.search(appliance):
        return f"a {appliance} appliance (by its name), not a compute node"
    public = any(i.subnet == "public" for i in host.ifaces.values())
    if public and not _RACK_RANK.match(host.name):
        return "the frontend (on the public subnet), not a compute node"
    return None


def _emit(hosts: list[_Host], out: Collector, *, at_interface: bool = False) -> None:
    """One node per host; `at_interface` reports the interface row (SQL), else the host's lines."""
    for host in hosts:
        last = max([host.where.last or host.where.line, *(i.where.line for i in host.ifaces.values())])
        where = host.where if at_interface else host.where.span(last)
        reason = _not_a_node(host)
        boot = _boot_iface(host)
        if reason is not None:
            out.skip(where, f"{host.name}: {reason}")
        elif isinstance(boot, str):
            out.skip(where, f"{host.name}: {boot}")
        else:
            out.node(where, boot[0], hostname=host.name, ip=boot[1], group=host.group)


def _clean(value: str | None) -> str:
    return "" if value is None or _EMPTY.match(value.strip()) else value.strip()


def _columns(line: str, starts: list[int]) -> list[str] | None:
    """The line cut at the header's column starts (Rocks pads every column); None when a cut hits a value."""
    if any(0 < at < len(line) and not line[at - 1].isspace() for at in starts[1:]):
        return None
    bounds = [*starts, max(len(line), starts[-1]) + 1]
    return [line[bounds[i] : bounds[i + 1]].strip() for i in range(len(starts))]


def parse_list_host_interface(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """Columns are named and placed by the header; a blank HOST column (Rocks trims repeats) means the host above."""
    for src in sources:
        header: list[str] = []
        starts: list[int] = []
        hosts: dict[str, _Host] = {}
        current: _Host | None = None
        for number, line in enumerate(src.lines, 1):
            if not line.strip():
                continue
            if line.split()[0] == "HOST":
                header = [f.lower() for f in line.split()]
                starts = [m.start() for m in re.finditer(r"\S+", line)]
                continue
            if not header:
                out.error(src.at(number), "data before the 'HOST SUBNET IFACE MAC ...' header")
                continue
            fields = _columns(line, starts)
            if fields is None:  # not aligned with the header: white space separates the columns
                fields = line.split()
                if line[:1].isspace() or len(fields) == len(header) - 1:
                    fields = ["", *fields]
            if fields[0]:
                name = fields[0].removesuffix(":")
                current = hosts.setdefault(name, _Host(name, src.at(number)))
            if current is None:
                out.error(src.at(number), "interface line without a host")
                continue
            row = dict(zip(header, fields, strict=False))
            device = _clean(row.get("iface")) or f"#{number}"
            current.ifaces[device] = _Iface(
                device,
                src.at(number),
                _clean(row.get("mac")),
                _clean(row.get("ip")),
                _clean(row.get("subnet")),
                _clean(row.get("module")),
                _clean(row.get("channel")),
            )
        _emit(list(hosts.values()), out)


_IFACE_KEYS = ("mac", "ip", "subnet", "module", "channel")


def _kwargs(args: list[str]) -> tuple[list[str], dict[str, str]]:
    positional = [a for a in args if "=" not in a]
    named = dict(a.split("=", 1) for a in args if "=" in a)
    return positional, {k.lower(): v for k, v in named.items()}


def parse_dump(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """Replays the `rocks add host …` / `rocks set host interface …` commands, positional or key=value."""
    for src in sources:
        hosts: dict[str, _Host] = {}
        lines = src.lines
        number = 0
        while number < len(lines):
            start = number + 1
            text = lines[number]
            while text.endswith("\\") and number + 1 < len(lines):  # shell line continuation
                number += 1
                text = text[:-1] + " " + lines[number]
            number += 1
            words = shell_words(text)
            if words is None:
                out.error(src.at(start, number), "cannot split shell command: unclosed quote")
                continue
            if not words or not words[0].endswith("rocks"):
                continue
            where = src.at(start, number)
            verb = [w.lower() for w in words[1:4]]
            if verb == ["add", "host", "interface"] or verb == ["set", "host", "interface"]:
                positional, named = _kwargs(words[4:])
                action = "add" if verb[0] == "add" else (positional[0].lower() if positional else "")
                args = positional if action == "add" else positional[1:]
                host_name = named.get("host", args[0] if args else "")
                device = named.get("iface", args[1] if len(args) > 1 else "")
                if not host_name or not device:
                    out.error(where, "rocks host interface command without host and interface")
                    continue
                host = hosts.setdefault(host_name, _Host(host_name, where))
                iface = host.ifaces.setdefault(device, _Iface(device, where))
                iface.where = where
                value = named.get(action, args[2] if len(args) > 2 else "")
                for key in _IFACE_KEYS:
                    if key in named:
                        setattr(iface, key, _clean(named[key]))
                if action in _IFACE_KEYS:
                    setattr(iface, action, _clean(value))
            elif verb[:2] == ["add", "host"] and (positional := _kwargs(words[3:])[0]):
                named = _kwargs(words[3:])[1]
                host = hosts.setdefault(positional[0], _Host(positional[0], where))
                host.group = named.get("membership", named.get("appliance", host.group))
        _emit(list(hosts.values()), out)


def _by_id(rows: list[Row], column: str = "name") -> dict[str, str]:
    return {str(r.values.get("id")): str(r.values.get(column) or "") for r in rows}


def parse_sqldump(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """Tables nodes, networks, memberships (and subnets in Rocks 5+): one node per `nodes` row."""
    for src in sources:
        dump = read_dump(src, out)
        if "nodes" not in dump.rows:
            out.error(src.at(1), "no INSERT INTO nodes in this dump (is it the Rocks 'cluster' database?)")
            continue
        memberships = _by_id(dump.rows.get("memberships", []))
        appliances = _by_id(dump.rows.get("appliances", []))
        subnets = _by_id(dump.rows.get("subnets", []))
        hosts: dict[str, _Host] = {}
        for row in dump.rows["nodes"]:
            membership = str(row.values.get("membership") or "")  # Rocks 4-6
            appliance = str(row.values.get("appliance") or "")  # Rocks 7: nodes point at appliances
            group = memberships.get(membership, membership) if membership else appliances.get(appliance, appliance)
            name = str(row.values.get("name") or "")
            hosts[str(row.values.get("id"))] = _Host(name, src.at(row.first, row.last), group)
        for row in dump.rows.get("networks", []):
            host = hosts.get(str(row.values.get("node")))
            if host is None:
                continue
            subnet = str(row.values.get("subnet") or "")
            device = str(row.values.get("device") or f"#{row.first}")
            host.ifaces.setdefault(
                device,
                _Iface(
                    device,
                    src.at(row.first, row.last),
                    _clean(row.values.get("mac")),
                    _clean(row.values.get("ip")),
                    subnets.get(subnet, subnet),
                    _clean(row.values.get("module")),
                    _clean(row.values.get("channel")),
                ),
            )
        _emit(list(hosts.values()), out, at_interface=True)


def sniff_list_host_interface(text: str) -> int:
    return has(text, r"^HOST\s+SUBNET\s+IFACE\s+MAC", 95)


def sniff_dump(text: str) -> int:
    return has(text, r"^\S*rocks\s+(add|set)\s+host\b", 90)


def sniff_sqldump(text: str) -> int:
    return has(text, r"(CREATE TABLE|INSERT INTO)\s+`?(nodes|networks|memberships)`?\s", 50) + has(
        text, r"`?memberships`?|`?appliances`?", 40
    )
