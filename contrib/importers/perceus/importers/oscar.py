"""OSCAR: the MAC file its "Setup Networking" step exports, and a MySQL dump of its ODA database."""

from __future__ import annotations

import re

from perceus.importers.records import Collector, ParseOptions, is_ipv4
from perceus.importers.sniffing import has, share_of_lines
from perceus.importers.source import Source
from perceus.importers.sqldump import Row, read_dump

_MAC = re.compile(r"^([0-9A-Fa-f]{1,2}[:-]){5}[0-9A-Fa-f]{1,2}$")
_HEADNODE = "oscar_server"


def parse_mac_file(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """One MAC per line in collection order, optionally followed by an IP and/or a host name."""
    for src in sources:
        for number, line in enumerate(src.lines, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            mac, rest = fields[0], fields[1:]
            ip = next((f for f in rest if is_ipv4(f)), "")
            name = next((f for f in rest if f != ip and not _MAC.match(f)), "")
            out.node(src.at(number), mac, hostname=name, ip=ip)


def _table(rows: dict[str, list[Row]], name: str) -> list[Row]:
    return rows.get(name, [])


def parse_oda_sqldump(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """Nodes joined with Nics (the NIC with a MAC, eth0 first), Groups for the group, Images for the VNFS."""
    for src in sources:
        dump = read_dump(src, out)
        nodes = _table(dump.rows, "nodes")
        if not nodes:
            out.error(src.at(1), "no INSERT INTO Nodes in this dump (is it the OSCAR 'oscar' database?)")
            continue
        groups = {str(r.values.get("id")): str(r.values.get("name") or "") for r in _table(dump.rows, "groups")}
        images = {str(r.values.get("id")): str(r.values.get("name") or "") for r in _table(dump.rows, "images")}
        member = {
            str(r.values.get("node_id")): str(r.values.get("group_name") or "")
            for r in _table(dump.rows, "group_nodes")
        }
        nics: dict[str, list[Row]] = {}
        for row in _table(dump.rows, "nics"):
            if row.values.get("mac"):
                nics.setdefault(str(row.values.get("node_id")), []).append(row)
        for row in nodes:
            node_id = str(row.values.get("id"))
            name = str(row.values.get("hostname") or row.values.get("name") or "")
            group = groups.get(str(row.values.get("group_id")), "") or member.get(node_id, "")
            where = src.at(row.first, row.last)
            if name == _HEADNODE or str(row.values.get("name")) == _HEADNODE or group == _HEADNODE:
                out.skip(where, f"{name}: the OSCAR head node, not a client")
                continue
            candidates = sorted(nics.get(node_id, []), key=lambda r: (r.values.get("name") != "eth0", r.first))
            if not candidates:
                out.skip(where, f"{name}: no NIC with a MAC")
                continue
            nic = candidates[0]
            out.node(
                src.at(nic.first, nic.last),
                str(nic.values.get("mac")),
                hostname=name,
                ip=str(nic.values.get("ip") or ""),
                group=group,
                vnfs=images.get(str(row.values.get("image_id")), ""),
            )


def sniff_mac_file(text: str) -> int:
    # Shares its look with mac-list and ethers; it wins only where lines carry an IP after the MAC.
    return share_of_lines(text, r"^\s*([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}\s+\d+\.\d+\.\d+\.\d+", weight=75)


def sniff_oda_sqldump(text: str) -> int:
    return has(text, r"(CREATE TABLE|INSERT INTO)[^\n]*`?Nics`?", 60) + has(text, r"`?Nodes`?|oscar", 30)
