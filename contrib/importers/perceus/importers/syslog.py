"""Syslog files with dhcpd/dnsmasq requests: RFC 3164 and 5424, dnsmasq's own log file, journalctl's short
output; rotated files (messages.2.gz, messages.1, messages or messages-20240101.gz …) read oldest first."""

from __future__ import annotations

import os
import re

from perceus.importers.dhcplog import Sighting, first_seen, is_dhcp_server, request_mac
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

# RFC 5424: <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [BOM]MSG
_RFC5424 = re.compile(r"^(?:<\d{1,3}>)\d{1,2} \S+ \S+ (\S+) \S+ \S+ ")
# RFC 3164 / journalctl short / ISO stamps: TIMESTAMP [HOST] TAG[PID]: MSG (dnsmasq's own log file has no HOST)
_STAMP = re.compile(
    r"^(?:<\d{1,3}>)?(?:(?:[A-Z][a-z]{2} )?(?:[A-Z][a-z]{2} [ \d]\d|\d{4}-\d\d-\d\d)"  # Apr  1, Mon 2024-04-01
    r" \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Z]{2,5})?"  # 10:00:00[.123456][ UTC]
    r"|\d{4}-\d\d-\d\dT\S+) "
)
_TAG = re.compile(r"^([^\s\[:]+)(?:\[\d+\])?:(?: |$)")
_MARKER = re.compile(r"^-- (Logs begin|Journal begins|Boot |Reboot|No entries|Subject:|Defined-By:)")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4")
_NUMBERED = re.compile(r"^(.*)\.(\d+)$")
_DATED = re.compile(r"^(.*)-(\d{8}(?:\d{2})?|\d{4}-\d\d-\d\d)$")  # logrotate dateext: -%Y%m%d[%H]


def rotation_key(path: str) -> tuple[str, int, str, int]:
    """(log name, age class, date, number): dated and numbered rotations before the live file, oldest first."""
    name = os.path.basename(path)
    for ext in _COMPRESSED:
        name = name.removesuffix(ext)
    if (numbered := _NUMBERED.match(name)) is not None:
        return numbered.group(1), 1, "", -int(numbered.group(2))  # messages.2 is older than messages.1
    if (dated := _DATED.match(name)) is not None:
        return dated.group(1), 0, dated.group(2).replace("-", ""), 0
    return name, 2, "", 0


def oldest_first(sources: list[Source]) -> list[Source]:
    """Rotations of one log in age order; different logs keep the order they were named in."""
    first: dict[str, int] = {}
    for index, src in enumerate(sources):
        first.setdefault(rotation_key(src.path)[0], index)
    return sorted(sources, key=lambda s: (first[rotation_key(s.path)[0]], rotation_key(s.path)[1:]))


def _skip_structured_data(line: str, at: int) -> int:
    """Index after RFC 5424 STRUCTURED-DATA (`-` or `[id k="v\\]"]…`) starting at `at`."""
    if line.startswith("-", at):
        return at + 1
    while line.startswith("[", at):
        at += 1
        quoted = False
        while at < len(line):
            ch = line[at]
            if quoted and ch == "\\":
                at += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif ch == "]" and not quoted:
                break
            at += 1
        at += 1
    return at


def message(line: str) -> tuple[str | None, str]:
    """(program, message) of a syslog line; program None (and the line whole) when the header is unknown."""
    match = _RFC5424.match(line)
    if match is not None:
        text = line[_skip_structured_data(line, match.end()) :].lstrip(" ").removeprefix("\ufeff")
        return match.group(1), text
    stamp = _STAMP.match(line)
    if stamp is None:
        return None, line
    rest = line[stamp.end() :].lstrip()
    for _ in range(2):  # the tag, or a host name and then the tag
        tag = _TAG.match(rest)
        if tag is not None:
            return tag.group(1), rest[tag.end() :]
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    return None, line


def dhcp_message(line: str) -> str | None:
    """The message of a DHCP server's line (dhcpd, dnsmasq), None for other programs' lines."""
    program, text = message(line)
    if program is not None and not is_dhcp_server(program):
        return None
    return text


def _messages(src: Source) -> list[tuple[int, int, str]]:
    """(first line, last line, text) per message; indented lines continue the one before, markers go."""
    found: list[tuple[int, int, str]] = []
    for number, line in enumerate(src.lines, 1):
        if not line.strip() or _MARKER.match(line):
            continue
        if line[:1] in " \t" and found and not _RFC5424.match(line.lstrip()):
            first, _, text = found[-1]
            found[-1] = (first, number, f"{text} {line.strip()}")
            continue
        found.append((number, number, line.lstrip("\ufeff")))
    return found


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """All files together, oldest rotation first; a MAC's place is its first request."""
    sightings: list[Sighting] = []
    for src in oldest_first(sources):
        for first, last, text in _messages(src):
            body = dhcp_message(text)
            mac = request_mac(body) if body is not None else None
            if mac is not None:
                sightings.append(Sighting(len(sightings), len(sightings), src.at(first, last), mac))
    first_seen(sightings, out)


def sniff(text: str) -> int:
    return has(text, r"(dhcpd|dnsmasq-dhcp|dnsmasq)(\[\d+\])?(:| \d+ | - ).*(DHCPDISCOVER|DHCPREQUEST|DHCPACK)", 90)
