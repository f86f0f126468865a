"""IBM CSM: the nodedef file that definenode reads, and `lsnode -l` output."""

from __future__ import annotations

import re

from perceus.importers.records import Bmc, Collector, ParseOptions, is_ipv4
from perceus.importers.sniffing import has
from perceus.importers.source import Source
from perceus.importers.stanza import Stanza, read

_NODEDEF_HEADER = re.compile(r"^([^=\s][^=]*):$")
_NODEDEF_ATTR = re.compile(r"^(\w+)\s*=\s*(.*)$")
_LSNODE_ATTR = re.compile(r"^(\w+)\s*=\s*(.*)$")
_MAC_ATTR = "InstallAdapterMacaddr"
_NODE_KEYS = ("Hostname", "Name")
_BMC_POWER = ("bmc", "ipmi", "xseries", "blade")


def _emit(src: Source, stanza: Stanza, hostname: str, out: Collector) -> None:
    where = src.at(stanza.first, stanza.last)
    mac = stanza.attrs.get(_MAC_ATTR, "")
    if not mac:
        out.skip(where, f"{hostname or stanza.name}: no {_MAC_ATTR} (node without install adapter)")
        return
    # The install adapter's address when CSM was given a literal one; a name is never resolved.
    adapter = stanza.attrs.get("InstallAdapterHostname", "").strip()
    ip = adapter if is_ipv4(adapter) else ""
    # The hardware control point of a BMC-powered node is its BMC (an HMC or MM manages many nodes).
    point = stanza.attrs.get("HWControlPoint", "").strip()
    power = stanza.attrs.get("PowerMethod", "").strip().lower()
    bmc = Bmc(point, stanza.attrs.get("HWControlUserId", "").strip()) if point and power in _BMC_POWER else None
    out.node(where, mac, hostname=hostname, ip=ip, bmc=bmc)


def parse_nodedef(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """`default:` stanzas are cumulative; an empty value turns a default off, as definenode does."""
    for src in sources:
        defaults: dict[str, str] = {}
        for item in read(src, _NODEDEF_HEADER, _NODEDEF_ATTR):
            if isinstance(item, tuple):
                out.error(src.at(item[0]), f"not a stanza header or Attribute=Value line: {item[1][:60]!r}")
                continue
            if item.name == "default":
                defaults.update(item.attrs)
                defaults = {k: v for k, v in defaults.items() if v}
                continue
            item.attrs = {**defaults, **{k: v for k, v in item.attrs.items()}}
            item.attrs = {k: v for k, v in item.attrs.items() if v}
            _emit(src, item, item.attrs.get("Hostname", item.name), out)


def _lsnode_blocks(src: Source) -> list[Stanza]:
    """`lsnode -l` prints `Attr = value` per node; a node begins at an unindented line or a repeated key."""
    blocks: list[Stanza] = []
    current: Stanza | None = None
    for number, raw in enumerate(src.lines, 1):
        match = _LSNODE_ATTR.match(raw.strip())
        if match is None:
            continue
        key, value = match.group(1), match.group(2).strip()
        unindented = not raw[:1].isspace()
        if current is None or key in current.attrs or (unindented and len(current.attrs) > 1):
            current = Stanza("", number, number)
            blocks.append(current)
        current.attrs[key] = value
        current.last = number
    return blocks


def parse_lsnode(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        for block in _lsnode_blocks(src):
            hostname = next((block.attrs[k] for k in _NODE_KEYS if block.attrs.get(k)), "")
            if not hostname:
                out.error(src.at(block.first, block.last), "lsnode block without Hostname or Name")
                continue
            _emit(src, block, hostname, out)


def sniff_nodedef(text: str) -> int:
    return has(text, r"^\s*InstallAdapterMacaddr\s*=", 60) + has(text, r"^\S[^=\n]*:\s*$", 30)


def sniff_lsnode(text: str) -> int:
    return has(text, r"^\s*InstallAdapterMacaddr\s+=", 60) + has(text, r"^\s*(Hostname|Name)\s+=\s+\S", 35)
