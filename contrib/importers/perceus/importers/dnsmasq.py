"""dnsmasq configuration: dhcp-host lines (also in conf-file, conf-dir and dhcp-hostsfile files).

Read as dnsmasq's option parser reads them: a `#` starts a comment only at the start of a line or after white
space, double quotes protect commas and `#` (and take C escapes), and each comma-separated field of a
`dhcp-host` is classified by its content, in dnsmasq's order: `set:`/`tag:` tags, `[IPv6]`, `id:` client-id,
anything with a `:` is a hardware address (optionally `1-` ARP type in front, `*` wildcards), a dotted quad is
the IPv4 address, digits with an optional s/m/h/d/w (or `infinite`) the lease time, `ignore` the ignore flag,
and the rest the host name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from perceus.importers.records import Collector, ParseOptions, is_ipv4
from perceus.importers.sniffing import has
from perceus.importers.source import Source, load, resolve_include

_ARP_TYPE = re.compile(r"^([0-9A-Fa-f]{1,2})-(.*:.*)$")
_LEASE = re.compile(r"^\d+[smhdwSMHDW]?$")
_TAGS = ("set:", "tag:", "net:")
_QUOTE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "e": "\x1b", "b": "\b", "\\": "\\", '"': '"'}
_MAX_DEPTH = 16


@dataclass
class _Walk:
    out: Collector
    stack: list[str] = field(default_factory=list)


def clean_line(raw: str) -> str:
    """The line as dnsmasq sees it: quotes removed (their content kept verbatim), comment cut off, trimmed."""
    chars: list[str] = []
    white = True
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            i += 1
            while i < len(raw) and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < len(raw):
                    i += 1
                    chars.append(_QUOTE_ESCAPES.get(raw[i], "\\" + raw[i]))
                else:
                    chars.append(raw[i])
                i += 1
            i += 1
            white = False
            continue
        if ch.isspace():
            chars.append(" ")
            white = True
        elif ch == "#" and white:
            break
        else:
            chars.append(ch)
            white = False
        i += 1
    return "".join(chars).strip()


def _fields(value: str) -> list[str]:
    """Comma-separated fields; a bracketed IPv6 address keeps its colons to itself."""
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
    """One `dhcp-host=` value, each field classified by what it looks like (not by its position)."""
    where = src.at(line)
    macs: list[str] = []
    client_id = ip = name = ""
    ignore = tagged = False
    for item in _fields(value):
        low = item.lower()
        if low.startswith(_TAGS) or item.startswith("["):
            tagged = tagged or low.startswith(_TAGS)
            continue
        if low.startswith("id:"):
            client_id = item[3:]
        elif ":" in item:
            typed = _ARP_TYPE.match(item)
            macs.append(typed.group(2) if typed else item)
        elif "." in item and is_ipv4(item):
            ip = item
        elif low == "infinite" or _LEASE.match(item):
            continue
        elif low == "ignore":
            ignore = True
        else:
            name = item
    if ignore:
        out.skip(where, f"dhcp-host {value}: 'ignore' entry, not a node")
    elif any("*" in m for m in macs):
        out.skip(where, f"dhcp-host {value}: wildcard MAC is a match rule, not a node")
    elif tagged and not (ip or name):
        out.skip(where, f"dhcp-host {value}: only tags a client (no address, no name), not a reservation")
    elif macs:
        out.host(where, macs[0], hostname=name, ip=ip)
    elif client_id and client_id != "*" and ":" in client_id:
        out.host(where, client_id, hostname=name, ip=ip)
    elif client_id and client_id != "*":
        out.skip(where, f"dhcp-host {value}: text client-id {client_id!r}, no hardware address")
    else:
        out.skip(where, f"dhcp-host {value}: no hardware address (hardware-less host)")


def _include(target: str, src: Source, line: int, walk: _Walk, *, hosts_only: bool) -> None:
    if os.path.isdir(target):  # dhcp-hostsfile may name a directory: every file, in alphabetical order
        for name in sorted(n for n in os.listdir(target) if not n.startswith(".") and not n.endswith("~")):
            _include(os.path.join(target, name), src, line, walk, hosts_only=hosts_only)
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
        line = clean_line(raw)
        if not line:
            continue
        if hosts_only:  # dhcp-hostsfile: each line is a dhcp-host value
            dhcp_host(line, src, number, walk.out)
            continue
        key, _, value = line.removeprefix("--").partition("=")
        key, value = key.strip(), value.strip()
        if key == "dhcp-host":
            dhcp_host(value, src, number, walk.out)
        elif key == "conf-file" and value:
            _include(resolve_include(value, src.path), src, number, walk, hosts_only=False)
        elif key == "conf-dir" and value:
            directory, *filters = value.split(",")
            _conf_dir(resolve_include(directory.strip(), src.path), filters, src, number, walk)
        elif key == "dhcp-hostsfile" and value:
            _include(resolve_include(value, src.path), src, number, walk, hosts_only=True)
        elif key == "read-ethers":
            walk.out.skip(src.at(number), "read-ethers: import the ethers file itself (format 'ethers')")
    walk.stack.pop()


def _conf_dir(target: str, filters: list[str], src: Source, line: int, walk: _Walk) -> None:
    """conf-dir=DIR[,.ext…][,*.ext…]: `*.ext` reads only those extensions, `.ext` leaves them out."""
    try:
        names = sorted(os.listdir(target))
    except OSError as err:
        walk.out.error(src.at(line), f"missing include {target}: {err.strerror or err}")
        return
    filters = [f.strip() for f in filters if f.strip()]
    keep = [f[1:] for f in filters if f.startswith("*")]
    drop = [f for f in filters if not f.startswith("*")]
    for name in names:
        if name.startswith(".") or name.endswith("~") or (name.startswith("#") and name.endswith("#")):
            continue
        if (keep and not name.endswith(tuple(keep))) or (drop and name.endswith(tuple(drop))):
            continue
        _include(os.path.join(target, name), src, line, walk, hosts_only=False)


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        _parse_one(src, _Walk(out))


def sniff(text: str) -> int:
    return has(text, r"^\s*dhcp-host\s*=", 90) + has(text, r"^\s*(dhcp-range|interface|domain)\s*=", 5)
