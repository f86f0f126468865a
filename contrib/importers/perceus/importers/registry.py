"""The formats `perceus import` knows, by name, and `auto` detection by content sniffing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perceus.errors import UsageError
from perceus.importers import (
    csm,
    dhcpd,
    dnsmasq,
    ethers,
    journal,
    kea,
    maclist,
    oscar,
    rocks,
    snmp,
    switch,
    syslog,
    warewulf,
    xcat,
)
from perceus.importers.records import Collector, ParseOptions, ParseResult, drop_other_interfaces
from perceus.importers.source import Source, open_sources

Parser = Callable[[list[Source], Collector, ParseOptions], None]
Sniffer = Callable[[str], int]
_SNIFF_BYTES = 64 * 1024
_CONFIDENT = 50


@dataclass(frozen=True)
class Format:
    """One source format: its parser, its sniffer, and whether it carries host names."""

    name: str
    parse: Parser
    sniff: Sniffer
    summary: str
    named: bool = True
    reservations: bool = False  # a DHCP-style host list: a node's other interfaces are listed as hosts too


def _formats(*formats: Format) -> dict[str, Format]:
    return {f.name: f for f in formats}


# `perceus1` (the in-place 1.x upgrade) is no parser of files; the master's import verb adds it beside these.
FORMATS: dict[str, Format] = _formats(
    Format("csm-nodedef", csm.parse_nodedef, csm.sniff_nodedef, "IBM CSM nodedef file (definenode -f)"),
    Format("csm-lsnode-long", csm.parse_lsnode, csm.sniff_lsnode, "IBM CSM `lsnode -l` output"),
    Format(
        "rocks-list-host-interface",
        rocks.parse_list_host_interface,
        rocks.sniff_list_host_interface,
        "Rocks `rocks list host interface`",
    ),
    Format("rocks-dump", rocks.parse_dump, rocks.sniff_dump, "Rocks `rocks dump` command script"),
    Format(
        "rocks-cluster-sqldump",
        rocks.parse_sqldump,
        rocks.sniff_sqldump,
        "mysqldump of the Rocks/OCS cluster DB",
    ),
    Format("oscar-mac-file", oscar.parse_mac_file, oscar.sniff_mac_file, "OSCAR exported MAC file"),
    Format("oscar-oda-sqldump", oscar.parse_oda_sqldump, oscar.sniff_oda_sqldump, "mysqldump of the OSCAR ODA DB"),
    Format("xcat-tabdump", xcat.parse_tabdump, xcat.sniff_tabdump, "xCAT `tabdump mac` (+ hosts, nodelist, ipmi)"),
    Format("xcat-lsdef", xcat.parse_lsdef, xcat.sniff_lsdef, "xCAT `lsdef -l` output"),
    Format("xcat-stanza", xcat.parse_stanza, xcat.sniff_stanza, "xCAT stanza file (`lsdef -z`)"),
    Format("warewulf4-nodes-conf", warewulf.parse_nodes_conf, warewulf.sniff_nodes_conf, "Warewulf 4 nodes.conf"),
    Format(
        "warewulf4-node-export",
        warewulf.parse_node_export,
        warewulf.sniff_node_export,
        "Warewulf 4 `wwctl node export`",
    ),
    Format("warewulf3-node-print", warewulf.parse_ww3, warewulf.sniff_ww3, "Warewulf 3 `wwsh node print`"),
    Format("isc-dhcpd-conf", dhcpd.parse, dhcpd.sniff, "ISC dhcpd.conf host declarations", reservations=True),
    Format("dnsmasq-conf", dnsmasq.parse, dnsmasq.sniff, "dnsmasq dhcp-host lines", reservations=True),
    Format("kea-dhcp4-conf", kea.parse, kea.sniff, "Kea kea-dhcp4.conf reservations", reservations=True),
    Format("ethers", ethers.parse, ethers.sniff, "ethers(5), /etc/perceus/ethers", reservations=True),
    Format("syslog", syslog.parse, syslog.sniff, "dhcpd/dnsmasq DHCP requests in syslog", named=False),
    Format("journal-json", journal.parse_json, journal.sniff_json, "journalctl -o json", named=False),
    Format("journal-export", journal.parse_export, journal.sniff_export, "journalctl -o export", named=False),
    Format("switch-mac-table", switch.parse, switch.sniff, "switch MAC address table", named=False),
    Format("switch-snmpwalk", snmp.parse, snmp.sniff, "snmpwalk of Q-BRIDGE-MIB", named=False),
    Format("mac-list", maclist.parse, maclist.sniff, "one MAC per line", named=False),
)


def detect(source: Source) -> Format:
    """The format whose sniffer rates the file's head highest; UsageError when none is confident."""
    head = source.text[:_SNIFF_BYTES]
    scores = sorted(((fmt.sniff(head), fmt.name) for fmt in FORMATS.values()), reverse=True)
    best, name = scores[0]
    if best < _CONFIDENT or (len(scores) > 1 and scores[1][0] == best):
        raise UsageError(f"cannot tell the format of {source.path}; name it instead of 'auto'")
    return FORMATS[name]


def parse(fmt: str, paths: list[str], options: ParseOptions) -> tuple[Format, ParseResult]:
    """Read and parse every file; unreadable command-line files raise, everything else is reported."""
    out = Collector()
    sources = open_sources(paths, out)
    chosen = detect(sources[0]) if fmt == "auto" else FORMATS[fmt]
    chosen.parse(sources, out, options)
    if chosen.reservations:
        drop_other_interfaces(out.result)
    return chosen, out.result
