"""systemd journal: `journalctl -o json` (also json-pretty / json-seq) and the binary-safe export format."""

from __future__ import annotations

import json
import struct

from perceus.importers.dhcplog import Sighting, first_seen, is_dhcp_server, request_mac
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

_DECODER = json.JSONDecoder()
_SIZE = struct.Struct("<Q")


def _message(value: object) -> str:
    """MESSAGE is a string, or an array of byte values when it is not valid UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", errors="replace")
    return ""


def _from_dhcp_server(identifier: object) -> bool:
    """SYSLOG_IDENTIFIER names the program; entries without one are judged by their message alone."""
    if isinstance(identifier, bytes):
        identifier = identifier.decode("utf-8", "replace")
    return not isinstance(identifier, str) or not identifier or is_dhcp_server(identifier)


def _time(value: object, fallback: float) -> float:
    try:
        return int(str(value)) / 1e6
    except ValueError:
        return fallback


def parse_json(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    sightings: list[Sighting] = []
    for src in sources:
        text, pos, line = src.text, 0, 1
        while pos < len(text):
            if text[pos] in " \t\n\x1e":  # json-seq puts RS before every record
                line += text[pos] == "\n"
                pos += 1
                continue
            try:
                entry, end = _DECODER.raw_decode(text, pos)
            except (ValueError, RecursionError):
                nl = text.find("\n", pos)
                reason = "truncated input: last JSON entry is cut short" if nl < 0 else "not a JSON journal entry"
                out.error(src.at(line), reason)
                if nl < 0:
                    break
                pos = nl
                continue
            if isinstance(entry, dict):
                ours = _from_dhcp_server(entry.get("SYSLOG_IDENTIFIER"))
                mac = request_mac(_message(entry.get("MESSAGE"))) if ours else None
                if mac is not None:
                    stamp = _time(entry.get("__REALTIME_TIMESTAMP"), float(len(sightings)))
                    sightings.append(Sighting(stamp, len(sightings), src.at(line), mac))
            else:
                out.error(src.at(line), "a JSON value that is not a journal entry object")
            line += text.count("\n", pos, end)
            pos = end
    first_seen(sightings, out)


def _export_entries(src: Source, out: Collector) -> list[tuple[int, dict[str, bytes]]]:
    """Entries as (line, fields): `NAME=value\\n` text fields, `NAME\\n<le64 size><data>\\n` binary fields."""
    entries: list[tuple[int, dict[str, bytes]]] = []
    data, pos = src.data, 0
    fields: dict[str, bytes] = {}
    start_line = line = 1
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            out.error(src.at(line), "truncated input: field without its final newline")
            return entries
        if nl == pos:  # blank line ends an entry
            if fields:
                entries.append((start_line, fields))
            fields, pos = {}, nl + 1
            line += 1
            start_line = line
            continue
        head = data[pos:nl]
        if b"=" in head:
            name, _, value = head.partition(b"=")
            fields[name.decode("ascii", "replace")] = value
            pos, line = nl + 1, line + 1
            continue
        size_at = nl + 1
        if size_at + _SIZE.size > len(data):
            out.error(src.at(line), "truncated input: binary field without its size")
            return entries
        (size,) = _SIZE.unpack_from(data, size_at)
        end = size_at + _SIZE.size + size
        if end >= len(data) or data[end : end + 1] != b"\n":
            out.error(src.at(line), "truncated input: binary field shorter than its size")
            return entries
        fields[head.decode("ascii", "replace")] = data[size_at + _SIZE.size : end]
        line += data.count(b"\n", pos, end + 1)
        pos = end + 1
    if fields:
        entries.append((start_line, fields))
    return entries


def parse_export(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    sightings: list[Sighting] = []
    for src in sources:
        for line, fields in _export_entries(src, out):
            if not _from_dhcp_server(fields.get("SYSLOG_IDENTIFIER")):
                continue
            mac = request_mac(fields.get("MESSAGE", b"").decode("utf-8", "replace"))
            if mac is not None:
                stamp = _time(fields.get("__REALTIME_TIMESTAMP", b"").decode("ascii", "replace"), 0.0)
                sightings.append(Sighting(stamp, len(sightings), src.at(line), mac))
    first_seen(sightings, out)


def sniff_json(text: str) -> int:
    return has(text, r'^\x1e?\s*\{\s*"[_A-Z]+"\s*:', 50) + has(text, r'"__REALTIME_TIMESTAMP"\s*:', 45)


def sniff_export(text: str) -> int:
    return has(text, r"^__CURSOR=", 60) + has(text, r"^__REALTIME_TIMESTAMP=\d+$", 35)
