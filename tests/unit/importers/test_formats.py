"""Table tests: every format's fixture → the nodes, errors and skipped records an admin expects."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from perceus.importers import registry
from perceus.importers.records import ParseOptions

DATA = Path(__file__).parents[2] / "data" / "importers"

# (format, files, nodes as (mac, hostname, ip, group, vnfs), error substrings, number skipped)
CASES = [
    (
        "csm-nodedef",
        ["csm/nodedef"],
        [("00:02:55:C6:5A:0D", "node01", "", "", ""), ("00:02:55:C6:5A:0E", "node02", "", "", "")],
        ["invalid MAC address '00:02:55:C6:5A:ZZ'"],
        1,
    ),
    (
        "csm-lsnode-long",
        ["csm/lsnode-l"],
        [("00:02:55:C6:5A:0D", "node01", "", "", ""), ("00:02:55:C6:5A:0E", "node02", "", "", "")],
        [],
        1,
    ),
    (
        "rocks-list-host-interface",
        ["rocks/list-host-interface"],
        [
            ("00:0C:29:5B:7E:A1", "compute-0-0", "10.1.255.254", "", ""),
            ("00:0C:29:5B:7E:B1", "compute-0-1", "10.1.255.253", "", ""),
        ],
        [],
        2,
    ),
    (
        "rocks-dump",
        ["rocks/dump"],
        [
            ("00:0C:29:5B:7E:A1", "compute-0-0", "10.1.255.254", "Compute", ""),
            ("00:0C:29:5B:7E:B1", "compute-0-1", "10.1.255.253", "Compute", ""),
        ],
        [],
        1,
    ),
    (
        "rocks-cluster-sqldump",
        ["rocks/cluster.sql"],
        [
            ("00:0C:29:5B:7E:A1", "compute-0-0", "10.1.255.254", "Compute", ""),
            ("00:0C:29:5B:7E:B1", "compute-0-1", "10.1.255.253", "Compute", ""),
        ],
        [],
        2,
    ),
    (
        "oscar-mac-file",
        ["oscar/macs"],
        [
            ("00:16:3E:00:00:02", "", "", "", ""),
            ("00:16:3E:00:00:03", "oscarnode2", "10.0.0.3", "", ""),
            ("00:16:3E:00:00:04", "", "10.0.0.4", "", ""),
        ],
        [],
        0,
    ),
    (
        "oscar-oda-sqldump",
        ["oscar/oda.sql"],
        [
            ("00:16:3E:00:00:02", "oscarnode1", "10.0.0.2", "oscar_clients", "oscarimage"),
            ("00:16:3E:00:00:03", "oscarnode2", "10.0.0.3", "oscar_clients", "oscarimage"),
        ],
        [],
        2,
    ),
    (
        "xcat-tabdump",
        ["xcat/mac.csv", "xcat/hosts.csv", "xcat/nodelist.csv"],
        [
            ("00:1A:64:A1:00:01", "cn01", "10.1.0.101", "compute", ""),
            ("00:1A:64:A1:00:02", "cn02", "10.1.0.102", "compute", ""),
            ("00:1A:64:A1:00:04", "cn04", "10.1.9.4", "gpu", ""),
        ],
        [],
        1,
    ),
    (
        "xcat-lsdef",
        ["xcat/lsdef.txt"],
        [
            ("00:1A:64:A1:00:01", "cn01", "10.1.0.101", "compute", ""),
            ("00:1A:64:A1:00:02", "cn02", "10.1.0.102", "compute", ""),
        ],
        [],
        1,
    ),
    (
        "xcat-stanza",
        ["xcat/stanza.txt"],
        [
            ("00:1A:64:A1:00:01", "cn01", "10.1.0.101", "compute", ""),
            ("00:02:C9:03:00:A1:B2:C3", "cn02", "10.1.0.102", "gpu", ""),
        ],
        [],
        1,
    ),
    (
        "warewulf4-nodes-conf",
        ["warewulf/nodes.conf"],
        [
            ("00:11:22:33:44:01", "n0001", "10.0.2.1", "default", "rocky-8"),
            ("00:11:22:33:44:02", "n0002", "10.0.2.2", "gpu", "rocky-8-cuda"),
            ("00:11:22:33:44:14", "n0004", "10.10.2.4", "", "rocky-9"),
        ],
        [],
        1,
    ),
    (
        "warewulf4-node-export",
        ["warewulf/node-export.yaml"],
        [
            ("00:11:22:33:44:01", "n0001", "10.0.2.1", "default", "rocky-8"),
            ("00:11:22:33:44:02", "n0002", "10.0.2.2", "default", ""),
        ],
        [],
        0,
    ),
    (
        "warewulf3-node-print",
        ["warewulf/ww3-node-print"],
        [
            ("00:0C:29:AB:CD:01", "n0000", "10.0.1.10", "compute", ""),
            ("00:0C:29:AB:CD:02", "n0001", "10.0.1.11", "", ""),
        ],
        [],
        1,
    ),
    (
        "isc-dhcpd-conf",
        ["dhcpd/dhcpd.conf"],
        [
            ("00:00:00:00:00:00", "n0000", "10.0.1.0", "", ""),
            ("00:1E:67:00:00:01", "c0001", "10.0.1.1", "", ""),
            ("00:1E:67:00:00:02", "n0002", "10.0.1.2", "", ""),
            ("00:02:C9:03:00:A1:B2:C5", "ib0001", "10.0.2.1", "", ""),
            ("00:1E:67:00:01:00", "n0100", "10.0.1.100", "", ""),
            ("00:1E:67:00:01:00", "n0101", "10.0.1.101", "", ""),
        ],
        [],
        3,
    ),
    (
        "isc-dhcpd-conf",
        ["dhcpd/broken.conf"],
        [("00:1E:67:00:00:02", "n2", "", "", "")],
        ["truncated input", "missing include", "invalid MAC address"],
        0,
    ),
    (
        "dnsmasq-conf",
        ["dnsmasq/dnsmasq.conf"],
        [
            ("00:25:90:00:00:01", "n0001", "10.0.1.1", "", ""),
            ("00:25:90:00:00:02", "n0002", "10.0.1.2", "", ""),
            ("00:25:90:00:00:03", "n0003", "10.0.1.3", "", ""),
            ("00:25:90:00:00:04", "n0004", "10.0.1.4", "", ""),
            ("00:25:90:00:00:06", "n0006", "10.0.1.6", "", ""),
            ("00:25:90:00:00:07", "n0007", "10.0.1.7", "", ""),
            ("00:25:90:00:00:08", "n0008", "10.0.1.8", "", ""),
        ],
        [],
        3,
    ),
    (
        "kea-dhcp4-conf",
        ["kea/kea-dhcp4.conf"],
        [
            ("1A:1B:1C:1D:1E:01", "node001", "10.0.3.1", "", ""),
            ("1A:1B:1C:1D:1E:02", "node002", "10.0.3.2", "", ""),
            ("1A:1B:1C:1D:1E:03", "node003", "10.0.3.3", "", ""),
            ("1A:1B:1C:1D:1E:04", "node004", "10.0.4.4", "", ""),
        ],
        [],
        1,
    ),
    (
        "ethers",
        ["ethers/perceus-ethers"],
        [
            ("00:0C:29:00:00:01", "n0000", "", "", ""),
            ("00:0C:29:00:00:02", "n0001", "", "", ""),
            ("00:0C:29:00:00:04", "n0003", "", "", ""),
        ],
        [],
        0,
    ),
    (
        "ethers",
        ["ethers/ethers"],
        [("08:00:20:00:61:CA", "pluto", "", "", ""), ("08:00:20:00:61:CB", "", "10.0.0.12", "", "")],
        ["no host name or address"],
        0,
    ),
    (
        "syslog",
        ["syslog/messages", "syslog/messages.1.gz"],
        [(f"00:25:90:AA:00:0{i}", "", "", "", "") for i in (2, 3, 1, 4)],
        ["invalid MAC address"],
        0,
    ),
    (
        "syslog",
        ["syslog/iso-rfc5424.log"],
        [(f"00:25:90:BB:00:0{i}", "", "", "", "") for i in (1, 2, 3)],
        [],
        0,
    ),
    (
        "syslog",
        ["syslog/truncated.gz"],
        [(f"00:25:90:CC:00:{i:02X}", "", "", "", "") for i in range(1, 20)],
        ["truncated input"],
        0,
    ),
    (
        "journal-json",
        ["journal/dhcp.json"],
        [("00:25:90:DD:00:01", "", "", "", ""), ("00:25:90:DD:00:02", "", "", "", "")],
        [],
        0,
    ),
    (
        "journal-export",
        ["journal/dhcp.export"],
        [("00:25:90:EE:00:01", "", "", "", ""), ("00:25:90:EE:00:02", "", "", "", "")],
        [],
        0,
    ),
    (
        "journal-export",
        ["journal/truncated.export"],
        [("00:25:90:EE:00:01", "", "", "", ""), ("00:25:90:EE:00:02", "", "", "", "")],
        ["truncated input"],
        0,
    ),
    (
        "switch-mac-table",
        ["switch/cisco-ios.txt"],
        [(f"00:25:90:00:{m}", "", "", "", "") for m in ("0A:01", "0A:02", "0B:03", "0A:10")],
        [],
        4,
    ),
    (
        "switch-mac-table",
        ["switch/arista.txt"],
        [(f"00:1C:73:00:00:{m}", "", "", "", "") for m in ("01", "02", "49")],
        [],
        0,
    ),
    (
        "switch-mac-table",
        ["switch/juniper.txt"],
        [(f"00:10:DB:C5:{m}", "", "", "", "") for m in ("55:01", "55:02", "56:01")],
        [],
        1,
    ),
    (
        "switch-mac-table",
        ["switch/juniper-els.txt"],
        [(f"00:00:5E:00:53:{m}", "", "", "", "") for m in ("01", "09", "0A")],
        [],
        0,
    ),
    (
        "switch-snmpwalk",
        ["snmp/qbridge-numeric.txt"],
        [(f"00:25:90:00:0A:{m}", "", "", "", "") for m in ("01", "02", "0A")],
        [],
        2,
    ),
    (
        "switch-snmpwalk",
        ["snmp/qbridge-symbolic.txt"],
        [("00:1C:73:00:00:01", "", "", "", ""), ("00:1C:73:00:00:02", "", "", "", "")],
        [],
        1,
    ),
    (
        "mac-list",
        ["maclist/macs.txt"],
        [(f"00:1A:2B:3C:4D:0{i}", "", "", "", "") for i in range(1, 5)],
        [],
        0,
    ),
]


def _paths(files: list[str], tmp_path: Path) -> list[str]:
    """Fixtures as given; syslog files are copied so their mtimes (the year of RFC 3164 lines) are fixed."""
    if not files[0].startswith("syslog/"):
        return [str(DATA / f) for f in files]
    out = []
    for name in files:
        target = tmp_path / Path(name).name
        shutil.copy(DATA / name, target)
        stamp = 1704067300 if name.endswith("messages") else 1704067100  # 2024-01-01, just after New Year
        os.utime(target, (stamp, stamp))
        out.append(str(target))
    return out


@pytest.mark.parametrize(
    ("fmt", "files", "nodes", "errors", "skipped"), CASES, ids=[f"{c[0]}:{c[1][0]}" for c in CASES]
)
def test_format(
    fmt: str,
    files: list[str],
    nodes: list[tuple[str, ...]],
    errors: list[str],
    skipped: int,
    tmp_path: Path,
) -> None:
    _, result = registry.parse(fmt, _paths(files, tmp_path), ParseOptions())
    assert [(n.mac, n.hostname, n.ip, n.group, n.vnfs) for n in result.nodes] == nodes
    assert len(result.errors) == len(errors), result.errors
    for expected, problem in zip(errors, result.errors, strict=True):
        assert expected in problem.reason
        assert problem.where.file and problem.where.line > 0
    assert len(result.skipped) == skipped, result.skipped


@pytest.mark.parametrize(("fmt", "files"), sorted({(c[0], c[1][0]) for c in CASES}))
def test_auto_detects(fmt: str, files: str, tmp_path: Path) -> None:
    chosen, _ = registry.parse("auto", _paths([files], tmp_path), ParseOptions())
    assert chosen.name == fmt


def test_vlan_filter_reads_only_that_vlan() -> None:
    _, result = registry.parse("switch-mac-table", [str(DATA / "switch/cisco-ios.txt")], ParseOptions(vlan="200"))
    assert [n.mac for n in result.nodes] == ["00:25:90:00:0B:03"]
    _, result = registry.parse("switch-mac-table", [str(DATA / "switch/juniper-els.txt")], ParseOptions(vlan="100"))
    assert [n.mac for n in result.nodes] == ["00:00:5E:00:53:09", "00:00:5E:00:53:0A"]


def test_line_ranges_point_at_the_host_block() -> None:
    _, result = registry.parse("isc-dhcpd-conf", [str(DATA / "dhcpd/dhcpd.conf")], ParseOptions())
    assert result.nodes[0].where.as_json() == {"file": str(DATA / "dhcpd/dhcpd.conf"), "lines": [15, 18]}
    assert result.nodes[1].where.as_json() == {"file": str(DATA / "dhcpd/dhcpd.conf"), "line": 19}
    assert result.nodes[4].where.file.endswith("hosts.d/rack1.conf")
