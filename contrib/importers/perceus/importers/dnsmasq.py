"""dnsmasq configuration: dhcp-host lines (also in conf-file, conf-dir and dhcp-hostsfile files)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from perceus.importers.records import Collector, ParseOptions, is_ipv4
from perceus.importers.sniffing import has
from perceus.importers.source import Source, load

_HWADDR = re.compile(r"^(?:\d{1,3}-)?[0-9A-Fa-f*]{1,2}([:-][0-9A-Fa-f*]{1,2}){5,}$")
_LEASE = re.compile(r"^(infinite|\d+[smhdw]?)$", re.IGNORECASE)
_KEYWORDS = ("set:", "tag:", "net:", "id:")
_MAX_DEPTH = 16


@dataclass
class _Walk:
    out: Collector
    stack: list[str] = field(default_factory=list)


def _fields(value: str) -> list[str]:
    """Comma-separated fields; a bracketed IPv6 address keeps its colons and commas to itself."""
    fields: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in value:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    fields.append("".join(current).strip())
    return [f for f in fields if f]


def dhcp_host(value: str, src: Source, line: int, out: Collector) -> None:
    """One `dhcp-host=` value: [hwaddr…][,id:client-id][,tags][,ipv4][,[ipv6]][,hostname][,lease][,ignore]."""
    where = src.at(line)
    macs, client_id, ip, name, ignore = [], "", "", "", False
    for item in _fields(value):
        low = item.lower()
        if low.startswith("id:"):
            client_id = item[3:]
        elif low.startswith(_KEYWORDS) or item.startswith("["):
            continue
        elif low == "ignore":
            ignore = True
        elif _HWADDR.match(item):
            macs.append(item)
        elif is_ipv4(item):
            ip = item
        elif _LEASE.match(item):
            continue
        else:
            name = item
    if ignore:
        out.skip(where, f"dhcp-host {value}: 'ignore' entry, not a node")
    elif any("*" in m for m in macs):
        out.skip(where, f"dhcp-host {value}: wildcard MAC is a match rule, not a node")
    elif macs:
        # `1-aa:bb:…` carries the ARP hardware type; the address follows the dash.
        mac = macs[0].split("-", 1)[1] if re.match(r"^\d{1,3}-", macs[0]) else macs[0]
        out.node(where, mac, hostname=name, ip=ip)
    elif client_id and client_id != "*" and re.match(r"^[0-9A-Fa-f:]+$", client_id):
        out.node(where, client_id, hostname=name, ip=ip)
    else:
        out.skip(where, f"dhcp-host {value}: no hardware address (hardware-less host)")


def _include(path: str, src: Source, line: int, walk: _Walk, *, hosts_only: bool) -> None:
    target = os.path.join(os.path.dirname(src.path), path)
    if os.path.isdir(target):
        names = sorted(n for n in os.listdir(target) if not n.startswith(".") and not n.endswith(("~", ".bak")))
        for name in names:
            _include(os.path.join(path, name), src, line, walk, hosts_only=hosts_only)
        return
    if os.path.realpath(target) in walk.stack or len(walk.stack) > _MAX_DEPTH:
        walk.out.error(src.at(line), f"include loop: {target}")
        return
    try:
        child = load(target, walk.out)
    except OSError as err:
        walk.out.error(src.at(line), f"missing include {target}: {err.strerror or err}")
        return
    _parse_one(child, walk, hosts_only=hosts_only)


def _parse_one(src: Source, walk: _Walk, *, hosts_only: bool = False) -> None:
    walk.stack.append(os.path.realpath(src.path))
    for number, raw in enumerate(src.lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if hosts_only:  # dhcp-hostsfile: each line is a dhcp-host value
            dhcp_host(line, src, number, walk.out)
            continue
        key, _, value = line.removeprefix("--").partition("=")
        key, value = key.strip(), value.split(" #", 1)[0].strip()
        if key == "dhcp-host":
            dhcp_host(value, src, number, walk.out)
        elif key == "conf-file" and value:
            _include(value, src, number, walk, hosts_only=False)
        elif key == "conf-dir" and value:
            directory, *filters = value.split(",")
            _conf_dir(directory, filters, src, number, walk)
        elif key == "dhcp-hostsfile" and value:
            _include(value, src, number, walk, hosts_only=True)
    walk.stack.pop()


def _conf_dir(directory: str, filters: list[str], src: Source, line: int, walk: _Walk) -> None:
    """conf-dir=DIR[,.ext…][,*.ext…]: `*.ext` reads only those extensions, `.ext` leaves them out."""
    target = os.path.join(os.path.dirname(src.path), directory)
    try:
        names = sorted(os.listdir(target))
    except OSError as err:
        walk.out.error(src.at(line), f"missing include {target}: {err.strerror or err}")
        return
    keep = [f[1:] for f in filters if f.startswith("*")]
    drop = [f for f in filters if not f.startswith("*")]
    for name in names:
        if name.startswith(".") or name.endswith("~") or (keep and not name.endswith(tuple(keep))):
            continue
        if drop and name.endswith(tuple(drop)):
            continue
        _include(os.path.join(directory, name), src, line, walk, hosts_only=False)


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        _parse_one(src, _Walk(out))


def sniff(text: str) -> int:
    return has(text, r"^\s*dhcp-host\s*=", 90) + has(text, r"^\s*(dhcp-range|interface|domain)\s*=", 5)
