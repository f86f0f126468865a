"""`show mac address-table` (Cisco IOS/NX-OS, Arista EOS) and Juniper `show ethernet-switching table`."""

from __future__ import annotations

import re

from perceus.importers.ports import Entry, emit, is_logical, is_multicast
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

# Shaped like a MAC (letters beyond f included, so a damaged address is reported instead of passed over).
_MAC = re.compile(r"^([0-9A-Za-z]{4}\.[0-9A-Za-z]{4}\.[0-9A-Za-z]{4}|([0-9A-Za-z]{2}[:-]){5}[0-9A-Za-z]{2})$")
# Physical interfaces: Gi1/0/1, Ethernet1/10, Et49/1, Fa0/1, ge-0/0/2.0, xe-0/0/0:1, Te1/1/1 (and Po1, ae0.0,
# which are aggregates), CatOS 3/1; sup-eth1(R) and vPC Peer-Link are not shaped like one, and CPU, Router,
# Vx1, Vlan10, mgmt0 … are shaped like one but logical (ports.is_logical, the one list of those names).
_PORT = re.compile(r"^([A-Za-z][A-Za-z-]*\d+([/:.]\d+)*|\d+(/\d+)+)$")
_FLAGS = {"*", "+", "G", "R", "O", "C", "~", "E"}  # NX-OS / IOS line markers before the VLAN
_VLAN_WORD = re.compile(r"^(?:vlan)?0*(\d+)$", re.IGNORECASE)


def vlan_matches(vlan: str, wanted: str | None) -> bool:
    """`--vlan 100` matches 100, VLAN0100, vlan100; `--vlan prov` matches a VLAN named prov."""
    if wanted is None:
        return True
    if vlan.lower() == wanted.lower():
        return True
    have, want = _VLAN_WORD.match(vlan), _VLAN_WORD.match(wanted)
    return have is not None and want is not None and have.group(1) == want.group(1)


# `show vlan brief` (IOS, EOS, NX-OS) printed with the table: "10   prov   active   Gi1/0/1, …"
_VLAN_BRIEF = re.compile(r"^\s*(\d{1,4})\s+(\S+)\s+(active|act/lshut|act/unsup|suspended|sus/lshut)\b", re.I)


def _wanted(sources: list[Source], wanted: str | None) -> str | None:
    """`--vlan NAME` as its number when a `show vlan brief` in the files names it; else as given."""
    if wanted is None or wanted.isdigit():
        return wanted
    for src in sources:
        for line in src.lines:
            match = _VLAN_BRIEF.match(line)
            if match is not None and match.group(2).lower() == wanted.lower():
                return match.group(1)
    return wanted


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    entries: list[Entry] = []
    wanted = _wanted(sources, options.vlan)
    for src in sources:
        for number, line in enumerate(src.lines, 1):
            tokens = line.split()
            at = next((i for i, tok in enumerate(tokens) if _MAC.match(tok)), None)
            if at is None:
                continue
            where = src.at(number)
            before = [t for t in tokens[:at] if t not in _FLAGS]
            after = tokens[at + 1 :]
            # VLAN before the MAC (IOS, NX-OS, EOS, Junos); old IOS prints it after the type.
            vlan = before[-1] if before else next((t for t in after if t.isdigit()), "")
            port = next((t for t in after if _PORT.match(t) and not is_logical(t)), None)
            nodeid = out.nodeid(where, tokens[at])
            if nodeid is None:
                continue
            in_vlan = vlan_matches(vlan, wanted)
            if port is None:
                if in_vlan:
                    out.skip(where, f"{tokens[at]}: not on a front port ({' '.join(after)[:40]})")
                continue
            if is_multicast(nodeid):
                if in_vlan:
                    out.skip(where, f"{nodeid}: multicast address")
                continue
            entries.append(Entry(port, nodeid, where, in_vlan))
    emit(entries, out)


def sniff(text: str) -> int:
    return has(text, r"Mac Address Table|Vlan\s+Mac Address\s+Type|[Ee]thernet.switching table", 90) + has(
        text, r"^\s*\*?\s*\S+\s+([0-9a-f]{4}\.){2}[0-9a-f]{4}\s", 5
    )
