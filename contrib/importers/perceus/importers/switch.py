"""`show mac address-table` (Cisco IOS/NX-OS, Arista EOS) and Juniper `show ethernet-switching table`."""

from __future__ import annotations

import re

from perceus.importers.ports import Entry, emit, is_multicast
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

_MAC = re.compile(r"^([0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}|([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2})$")
# Interface names: Gi1/0/1, Ethernet1/10, Et49/1, Fa0/1, ge-0/0/2.0, xe-0/0/0:1, Te1/1/1, Po1, ae0.0.
_PORT = re.compile(r"^[A-Za-z][A-Za-z-]*\d+([/:.]\d+)*$")
_FLAGS = {"*", "+", "G", "R", "O", "C", "~", "E"}  # NX-OS / IOS line markers before the VLAN


def _vlan_matches(vlan: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    digits = re.sub(r"\D", "", vlan)
    return vlan.lower() == wanted.lower() or (wanted.isdigit() and digits.lstrip("0") == wanted.lstrip("0"))


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    entries: list[Entry] = []
    for src in sources:
        for number, line in enumerate(src.lines, 1):
            tokens = line.split()
            at = next((i for i, tok in enumerate(tokens) if _MAC.match(tok)), None)
            if at is None:
                continue
            where = src.at(number)
            before = [t for t in tokens[:at] if t not in _FLAGS]
            vlan = before[-1] if before else ""
            if not _vlan_matches(vlan, options.vlan):
                continue
            port = next((t for t in tokens[at + 1 :] if _PORT.match(t)), None)
            if port is None:
                out.skip(where, f"{tokens[at]}: not on a front port ({' '.join(tokens[at + 1 :])[:40]})")
                continue
            nodeid = out.nodeid(where, tokens[at])
            if nodeid is None:
                continue
            if is_multicast(nodeid):
                out.skip(where, f"{nodeid}: multicast address")
                continue
            entries.append(Entry(port, nodeid, where))
    emit(entries, out)


def sniff(text: str) -> int:
    return has(text, r"Mac Address Table|Vlan\s+Mac Address\s+Type|[Ee]thernet.switching table", 90) + has(
        text, r"^\s*\*?\s*\S+\s+([0-9a-f]{4}\.){2}[0-9a-f]{4}\s", 5
    )
