"""xCAT: `tabdump` CSV tables (mac, hosts, nodelist, ipmi, joined by node), `lsdef` output and stanza files.

Attributes split at their first `=` (values carry `=` themselves: `addkcmdline=console=ttyS0`).  The node IP
is `ip` only; `nicips.<nic>` are other interfaces.  Switches, PDUs, hardware-management points and the
management node are node objects in xCAT but not nodes to provision.  `bmc`/`bmcusername` are carried as
the node's BMC.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

from perceus.importers.records import Bmc, Collector, Location, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source
from perceus.importers.stanza import read
from perceus.importers.xcat_regex import expand


def group_of(groups: str) -> str:
    """xCAT nodes belong to several groups; the first that is not the catch-all `all` is the Perceus group."""
    names = [g.strip() for g in groups.split(",") if g.strip()]
    return next((g for g in names if g != "all"), "")


_NOT_NODE_TYPES = {"switch", "pdu", "hmc", "ivm", "fsp", "bpa", "cec", "frame", "rack", "mp", "cmm", "ppc"}
_NOT_NODE_GROUPS = {"__mgmtnode", "switch", "switches", "pdu", "pdus"}


def not_a_node(attrs: dict[str, str]) -> str | None:
    """Why an xCAT node object is no node to provision (by nodetype, mgt or group), or None."""
    types = {t.strip().lower() for t in attrs.get("nodetype", "").split(",") if t.strip()}
    if types & _NOT_NODE_TYPES and "osi" not in types:
        return f"nodetype={attrs['nodetype']}, not a node to provision"
    if attrs.get("mgt", "").lower() in ("switch", "pdu"):
        return f"mgt={attrs['mgt']}, not a node to provision"
    groups = {g.strip().lower() for g in attrs.get("groups", "").split(",")}
    if groups & _NOT_NODE_GROUPS:
        return f"in group {sorted(groups & _NOT_NODE_GROUPS)[0]}, not a node to provision"
    return None


def bmc_of(address: str, username: str) -> Bmc | None:
    return Bmc(address.strip(), username.strip()) if address.strip() else None


def install_mac(value: str, node: str) -> str:
    """The install MAC out of `mac!host|mac!host`: the entry bound to the node itself (or the first)."""
    entries = [e.strip() for e in value.split("|") if e.strip()]
    for entry in entries:
        mac, _, host = entry.partition("!")
        if not host or host == node:
            return mac
    return entries[0].partition("!")[0] if entries else ""


_TABLE_KINDS = (("mac", "mac"), ("hosts", "ip"), ("nodelist", "groups"), ("ipmi", "bmc"))


@dataclass
class _Table:
    columns: list[str]
    rows: dict[str, tuple[Location, dict[str, str]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def _read_table(src: Source, out: Collector) -> tuple[str, _Table] | None:
    lines = src.lines
    head = next((i for i, line in enumerate(lines) if line.strip()), None)
    if head is None or not lines[head].startswith("#"):
        out.error(src.at((head or 0) + 1), "tabdump output must start with its '#column,...' header")
        return None
    columns = [c.strip() for c in lines[head][1:].split(",")]
    kind = next((k for k, column in _TABLE_KINDS if column in columns), "")
    table = _Table(columns)
    for number in range(head + 2, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip() or line.startswith("#"):
            continue
        try:
            values = next(csv.reader([line], strict=True))
        except csv.Error as err:
            out.error(src.at(number), f"bad CSV: {err}")
            continue
        row = dict(zip(columns, values, strict=False))
        key = row.get("node", "")
        if key:
            table.rows.setdefault(key, (src.at(number), row))
            table.order.append(key)
    return kind, table


def _lookup(table: _Table | None, node: str, groups: list[str], column: str) -> str:
    """A node's value, else the first of its groups' values, with xCAT's |regex|replacement| evaluated."""
    if table is None:
        return ""
    for key in (node, *groups):
        found = table.rows.get(key)
        if found and found[1].get(column, "") and found[1].get("disable", "") not in ("1", "yes"):
            return expand(found[1][column], node)
    return ""


def parse_tabdump(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """Nodes come from the mac table in its order; hosts and nodelist, if given, add IPs and groups."""
    tables: dict[str, _Table] = {}
    for src in sources:
        read_back = _read_table(src, out)
        if read_back is None:
            continue
        kind, table = read_back
        if not kind:
            out.skip(src.at(1), "tabdump of a table without mac, ip or groups columns: ignored")
        elif kind in tables:
            out.error(src.at(1), f"a second {kind} table")
        else:
            tables[kind] = table
    macs = tables.get("mac")
    if macs is None:
        where = sources[0].at(1) if sources else Location("-", 0)
        out.error(where, "no tabdump of the mac table among the files (nodes come from it)")
        return
    nodelist = tables.get("nodelist")
    for key in macs.order:
        where, row = macs.rows[key]
        if row.get("disable", "") in ("1", "yes"):
            out.skip(where, f"{key}: row disabled")
            continue
        groups = [g for g in _lookup(nodelist, key, [], "groups").split(",") if g]
        if nodelist is not None and key not in nodelist.rows:
            out.skip(where, f"{key}: a group row, not a node")
            continue
        reason = not_a_node({"groups": ",".join(groups)})
        if reason is not None:
            out.skip(where, f"{key}: {reason}")
            continue
        mac = install_mac(expand(row.get("mac", ""), key), key)
        if not mac:
            out.skip(where, f"{key}: no MAC")
            continue
        ip = _lookup(tables.get("hosts"), key, groups, "ip")
        ipmi = tables.get("ipmi")
        bmc = bmc_of(_lookup(ipmi, key, groups, "bmc"), _lookup(ipmi, key, groups, "username"))
        out.node(where, mac, hostname=key, ip=ip, group=group_of(",".join(groups)), bmc=bmc)


_STANZA_HEADER = re.compile(r"^(\S+):$")
_LSDEF_HEADER = re.compile(r"^Object name:\s*(\S+)$")
_ATTR = re.compile(r"^([\w.-]+)=(.*)$")


def _parse_objects(sources: list[Source], out: Collector, header: re.Pattern[str]) -> None:
    for src in sources:
        defaults: dict[str, dict[str, str]] = {}
        for item in read(src, header, _ATTR):
            if isinstance(item, tuple):
                out.error(src.at(item[0]), f"not a header or attr=value line: {item[1][:60]!r}")
                continue
            where = src.at(item.first, item.last)
            if item.name.startswith("default-"):  # cumulative defaults for one object type
                kind_defaults = defaults.setdefault(item.name[len("default-") :], {})
                kind_defaults.update(item.attrs)
                continue
            objtype = item.attrs.get("objtype", "node")
            if objtype != "node":
                out.skip(where, f"{item.name}: objtype={objtype}, not a node")
                continue
            attrs = {k: v for k, v in {**defaults.get("node", {}), **item.attrs}.items() if v.strip()}
            reason = not_a_node(attrs)
            if reason is not None:
                out.skip(where, f"{item.name}: {reason}")
                continue
            mac = install_mac(attrs.get("mac", ""), item.name)
            if not mac:
                out.skip(where, f"{item.name}: no mac attribute (hardware-less definition)")
                continue
            out.node(
                where,
                mac,
                hostname=item.name,
                ip=attrs.get("ip", ""),
                group=group_of(attrs.get("groups", "")),
                bmc=bmc_of(attrs.get("bmc", ""), attrs.get("bmcusername", "")),
            )


def parse_lsdef(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    _parse_objects(sources, out, _LSDEF_HEADER)


def parse_stanza(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    _parse_objects(sources, out, _STANZA_HEADER)


def sniff_tabdump(text: str) -> int:
    return has(text, r"\A\s*#node,", 95)


def sniff_lsdef(text: str) -> int:
    return has(text, r"^Object name:\s*\S", 95)


def sniff_stanza(text: str) -> int:
    return has(text, r"^\s*objtype=node\s*$", 70) + has(text, r"xCAT data object stanza file", 25)
