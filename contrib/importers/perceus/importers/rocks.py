"""Rocks / Platform OCS: `rocks list host interface`, `rocks dump`, and the MySQL dump of the cluster DB."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from perceus.importers.records import Collector, Location, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source
from perceus.importers.sqldump import Row, read_dump

# Appliances that are in the Rocks database but are not compute nodes Perceus could boot.
_NOT_NODES = re.compile(r"frontend|switch|power|remote management|pdu", re.IGNORECASE)
_EMPTY = re.compile(r"^-+$")  # Rocks prints an unset column as dashes


@dataclass
class _Iface:
    device: str
    where: Location
    mac: str = ""
    ip: str = ""
    subnet: str = ""


@dataclass
class _Host:
    name: str
    where: Location
    group: str = ""
    ifaces: dict[str, _Iface] = field(default_factory=dict)


def _boot_iface(host: _Host) -> _Iface | None:
    """The interface on the `private` subnet (the one Rocks installs over), else the first with a MAC."""
    with_mac = [i for i in host.ifaces.values() if i.mac]
    private = [i for i in with_mac if i.subnet == "private"]
    chosen = private or with_mac
    return chosen[0] if chosen else None


def _emit(hosts: list[_Host], out: Collector, *, at_interface: bool = False) -> None:
    """One node per host; `at_interface` reports the interface row (SQL), else the host's lines."""
    for host in hosts:
        iface = _boot_iface(host)
        last = max([host.where.last or host.where.line, *(i.where.line for i in host.ifaces.values())])
        where = host.where if at_interface else host.where.span(last)
        if host.group and _NOT_NODES.search(host.group):
            out.skip(where, f"{host.name}: appliance {host.group!r} is not a compute node")
        elif iface is None:
            out.skip(where, f"{host.name}: no interface with a MAC")
        else:
            at = iface.where if at_interface else where
            out.node(at, iface.mac, hostname=host.name, ip=iface.ip, group=host.group)


def _clean(value: str | None) -> str:
    return "" if value is None or _EMPTY.match(value.strip()) else value.strip()


def parse_list_host_interface(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """Columns are named by the header; a blank HOST column (Rocks trims repeats) means the host above."""
    for src in sources:
        header: list[str] = []
        hosts: dict[str, _Host] = {}
        current: _Host | None = None
        for number, line in enumerate(src.lines, 1):
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "HOST":
                header = [f.lower() for f in fields]
                continue
            if not header:
                out.error(src.at(number), "data before the 'HOST SUBNET IFACE MAC ...' header")
                continue
            if fields[0].endswith(":"):
                name = fields[0][:-1]
                current = hosts.setdefault(name, _Host(name, src.at(number)))
            elif current is not None and len(fields) == len(header) - 1:
                fields = ["", *fields]
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
            )
        _emit(list(hosts.values()), out)


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
            try:
                words = shlex.split(text, comments=True)
            except ValueError as err:
                out.error(src.at(start, number), f"cannot split shell command: {err}")
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
                for key in ("mac", "ip", "subnet"):
                    if key in named:
                        setattr(iface, key, _clean(named[key]))
                if action in ("mac", "ip", "subnet"):
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
        subnets = _by_id(dump.rows.get("subnets", []))
        hosts: dict[str, _Host] = {}
        for row in dump.rows["nodes"]:
            group = str(row.values.get("membership") or "")
            hosts[str(row.values.get("id"))] = _Host(
                str(row.values.get("name") or ""), src.at(row.first, row.last), memberships.get(group, group)
            )
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
