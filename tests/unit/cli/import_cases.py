"""The samples under tests/data/importers/ and what `perceus import` must make of each (one quirk a file)."""

from __future__ import annotations

from dataclasses import dataclass

Nodes = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Case:
    """A sample: the nodes as (MAC, hostname, IP) in order, error substrings in order, how many skipped."""

    fmt: str
    files: tuple[str, ...]
    nodes: Nodes
    errors: tuple[str, ...] = ()
    skipped: int | None = None
    args: tuple[str, ...] = ()
    bmc: tuple[tuple[str, str] | None, ...] = ()


def macs(prefix: str, *suffixes: str, first: int = 0) -> Nodes:
    """Nameless-source nodes: template names n0000, n0001 … in order."""
    return tuple((f"{prefix}{s}", f"n{first + i:04d}", "") for i, s in enumerate(suffixes))


CASES: list[Case] = [
    Case("mac-list", ("maclist/macs.txt",), macs("00:1A:2B:3C:4D:0", "1", "2", "3", "4")),
]

CASES += [
    Case(
        "dnsmasq-conf",
        ("dnsmasq/quirks/fields.conf",),
        (
            ("52:54:00:1A:00:01", "c001", "10.20.1.1"),
            ("52:54:00:1A:00:02", "c002", "10.20.1.2"),
            ("52:54:00:1A:00:03", "c003", "10.20.1.3"),
            ("52:54:00:1A:00:04", "c004", "10.20.1.4"),
            ("52:54:00:1A:00:05", "c005", "10.20.1.5"),
            ("00:02:C9:03:00:7D:4E:11", "c006-ib", "10.20.1.6"),
            ("52:54:00:1A:00:08", "c008", "10.20.1.8"),
        ),
        errors=("invalid MAC address '52:54:00:1a:00:zz'",),
        skipped=6,
    ),
]

CASES += [
    Case(
        "kea-dhcp4-conf",
        ("kea/quirks/document-order.conf",),
        (
            ("B8:CA:3A:00:10:01", "ra01", "10.30.1.11"),
            ("B8:CA:3A:00:10:02", "ra02", "10.30.1.12"),
            ("B8:CA:3A:00:20:01", "rb01", "10.30.2.11"),
            ("B8:CA:3A:00:20:04", "rb04", "10.30.2.14"),
            ("B8:CA:3A:00:00:01", "login1", "10.30.0.21"),
            ("B8:CA:3A:00:00:02", "login2", "10.30.0.22"),
        ),
        skipped=3,  # the DUID, the flex-id and the text client-id reservations
    ),
]

CASES += [
    Case(
        "isc-dhcpd-conf",
        ("dhcpd/quirks/dhcpd.conf",),
        (
            ("52:54:00:40:00:01", "b001", "10.40.1.1"),
            ("52:54:00:40:00:02", "b002", "10.40.1.2"),
            ("52:54:00:40:00:03", "blue003", "10.40.1.3"),
            ("52:54:00:40:00:04", "b004", "10.40.1.4"),
            ("52:54:00:40:00:05", "b005", "10.40.1.5"),
            ("00:02:C9:03:00:7D:4E:77", "b007-ib", "10.42.1.7"),
            ("52:54:00:40:00:10", "b010", "10.40.1.10"),
        ),
        errors=("duplicate MAC 52:54:00:40:00:01",),
        skipped=6,  # class, subclass, the BMC, "deny booting", the DUID client-id, b001-data (b001 again)
    ),
]

CASES += [
    Case(
        "rocks-list-host-interface",
        ("rocks/quirks/list-host-interface-bond",),
        (
            ("00:25:90:A0:00:01", "compute-0-0", "10.1.255.254"),
            ("00:25:90:A1:00:01", "compute-0-1", "10.1.255.253"),
            ("00:25:90:A2:00:01", "compute-0-2", "10.1.255.252"),
        ),
        skipped=3,  # the frontend, the host with only an IPMI interface, the switch
    ),
]

CASES += [
    Case(
        "rocks-dump",
        ("rocks/quirks/dump-escapes",),
        (
            ("00:25:90:B0:00:01", "compute-0-0", "10.1.255.254"),
            ("00:25:90:B1:00:01", "compute-0-1", "10.1.255.253"),
            ("00:25:90:B2:00:01", "compute-0-2", "10.1.255.252"),
        ),
        errors=("invalid MAC address '00:25:90:b3:00:0x'",),
        skipped=2,  # the frontend, the PDU
    ),
]

CASES += [
    Case(
        "rocks-cluster-sqldump",
        ("rocks/quirks/cluster-bond.sql",),
        (
            ("00:30:48:C0:00:01", "compute-0-0", "10.1.255.254"),
            ("00:30:48:C1:00:01", "compute-0-1", "10.1.255.253"),
            ("00:30:48:C2:00:01", "compute-0-2", "10.1.255.252"),
        ),
        skipped=2,  # the frontend, the switch
    ),
]

CASES += [
    Case(
        "xcat-lsdef",
        ("xcat/quirks/lsdef-l.txt",),
        (
            ("52:54:00:50:01:01", "r1n01", "10.5.1.1"),
            ("52:54:00:50:01:02", "r1n02", ""),
            ("52:54:00:50:01:03", "r1n03", "10.5.1.3"),
        ),
        errors=("duplicate IP 10.5.1.3",),
        skipped=3,  # the management node, the switch, the PDU
        bmc=(("10.6.1.1", "ADMIN"), ("r1n02-bmc", ""), None),
    ),
    Case(
        "xcat-stanza",
        ("xcat/quirks/stanza-defaults.txt",),
        (
            ("52:54:00:80:00:01", "s01", "10.8.0.1"),
            ("52:54:00:80:00:02", "s02", "10.8.0.2"),
            ("52:54:00:80:00:03", "s03", "10.8.0.3"),
        ),
        skipped=2,  # the group object, the node without a MAC
        bmc=(None, ("10.9.0.2", "USERID"), None),
    ),
]

CASES += [
    Case(
        "warewulf4-nodes-conf",
        ("warewulf/quirks/nodes-legacy.conf",),
        (
            ("52:54:00:60:01:01", "w001", "10.60.0.1"),
            ("52:54:00:60:02:01", "w002", "10.60.0.2"),
            ("52:54:00:60:03:02", "w003", "10.60.0.3"),
            ("00:02:C9:03:00:7D:4E:55", "w005", "10.63.0.5"),
        ),
        skipped=1,  # the discoverable node without a hwaddr
        bmc=(("10.61.0.1", "ADMIN"), ("10.61.0.2", "gpuadmin"), None, None),
    ),
]

_Q = "syslog/quirks/"
CASES += [
    Case(
        "syslog",
        (f"{_Q}numbered/messages", f"{_Q}numbered/messages.1", f"{_Q}numbered/messages.2.gz"),
        macs("52:54:00:70:00:0", "3", "1", "2", "4"),
        errors=("invalid MAC address '52:54:00:70:00:zz'",),
    ),
    Case(
        "syslog",
        (f"{_Q}dated/daemon.log", f"{_Q}dated/daemon.log-20240225", f"{_Q}dated/daemon.log-20240218.gz"),
        macs("52:54:00:71:00:0", "1", "4", "2", "3"),
    ),
    Case("syslog", (f"{_Q}rfc5424.log",), macs("52:54:00:72:00:0", "1", "2")),
    Case(
        "syslog",
        (f"{_Q}dnsmasq.log",),
        (("52:54:00:73:00:01", "n0000", ""), ("00:02:C9:03:00:7D:4E:88", "n0001", "")),
    ),
    Case("syslog", (f"{_Q}journal-short.txt",), macs("52:54:00:74:00:0", "1", "2", "3", "4"), skipped=1),
]

CASES += [
    Case(
        "switch-mac-table",
        ("switch/quirks/cisco-stack.txt",),
        macs("52:54:00:80:0", "1:01", "1:02", "1:10", "1:49", "2:10"),
        errors=("Gi1/0/3: two MACs in the VLAN",),
        skipped=3,  # Gi1/0/4 (three MACs: an uplink), Po1, a multicast address
        args=("--vlan", "10"),
    ),
    Case(
        "switch-mac-table",
        ("switch/quirks/juniper-vlan-names.txt",),
        macs("52:54:00:81:0", "0:01", "0:02", "0:10", "1:01"),
        errors=("invalid MAC address '52:54:00:81:00:0z'",),
        skipped=1,  # ae0.0
        args=("--vlan", "prov"),
    ),
    Case(
        "switch-snmpwalk",
        ("snmp/quirks/qbridge-vlan-static.txt",),
        macs("52:54:00:90:00:0", "1", "2", "3"),
        skipped=1,  # the switch's own address
        args=("--vlan", "prov"),
    ),
]

# The first samples of each format (also read by tests/unit/importers/test_formats.py).
CASES += [
    Case(
        "csm-nodedef",
        ("csm/nodedef",),
        (("00:02:55:C6:5A:0D", "node01", ""), ("00:02:55:C6:5A:0E", "node02", "")),
        errors=("invalid MAC address '00:02:55:C6:5A:ZZ'",),
        skipped=1,
    ),
    Case(
        "csm-lsnode-long",
        ("csm/lsnode-l",),
        (("00:02:55:C6:5A:0D", "node01", ""), ("00:02:55:C6:5A:0E", "node02", "")),
        skipped=1,
    ),
    Case(
        "oscar-mac-file",
        ("oscar/macs",),
        (
            ("00:16:3E:00:00:02", "n0000", ""),
            ("00:16:3E:00:00:03", "oscarnode2", "10.0.0.3"),
            ("00:16:3E:00:00:04", "n0001", "10.0.0.4"),
        ),
    ),
    Case(
        "oscar-oda-sqldump",
        ("oscar/oda.sql",),
        (("00:16:3E:00:00:02", "oscarnode1", "10.0.0.2"), ("00:16:3E:00:00:03", "oscarnode2", "10.0.0.3")),
        skipped=2,
    ),
    Case(
        "xcat-tabdump",
        ("xcat/mac.csv", "xcat/hosts.csv", "xcat/nodelist.csv"),
        (
            ("00:1A:64:A1:00:01", "cn01", "10.1.0.101"),
            ("00:1A:64:A1:00:02", "cn02", "10.1.0.102"),
            ("00:1A:64:A1:00:04", "cn04", "10.1.9.4"),
        ),
        skipped=1,
    ),
    Case(
        "warewulf4-node-export",
        ("warewulf/node-export.yaml",),
        (("00:11:22:33:44:01", "n0001", "10.0.2.1"), ("00:11:22:33:44:02", "n0002", "10.0.2.2")),
    ),
    Case(
        "warewulf3-node-print",
        ("warewulf/ww3-node-print",),
        (("00:0C:29:AB:CD:01", "n0000", "10.0.1.10"), ("00:0C:29:AB:CD:02", "n0001", "10.0.1.11")),
        skipped=1,
    ),
    Case(
        "ethers",
        ("ethers/ethers",),
        (("08:00:20:00:61:CA", "pluto", ""), ("08:00:20:00:61:CB", "n0000", "10.0.0.12")),
        errors=("no host name or address",),
    ),
    Case(
        "ethers",
        ("ethers/perceus-ethers",),
        (*macs("00:0C:29:00:00:0", "1", "2"), ("00:0C:29:00:00:04", "n0003", "")),
    ),
    Case("journal-json", ("journal/dhcp.json",), macs("00:25:90:DD:00:0", "1", "2")),
    Case("journal-export", ("journal/dhcp.export",), macs("00:25:90:EE:00:0", "1", "2")),
    Case(
        "journal-export",
        ("journal/truncated.export",),
        macs("00:25:90:EE:00:0", "1", "2"),
        errors=("truncated input",),
    ),
    Case("switch-mac-table", ("switch/arista.txt",), macs("00:1C:73:00:00:", "01", "02", "49")),
    Case("switch-mac-table", ("switch/juniper.txt",), macs("00:10:DB:C5:", "55:01", "55:02", "56:01"), skipped=1),
    Case(
        "isc-dhcpd-conf",
        ("dhcpd/broken.conf",),
        (("00:1E:67:00:00:02", "n2", ""),),
        errors=("truncated input", "missing include", "invalid MAC address"),
    ),
    Case(
        "auto",
        ("switch/cisco-ios.txt",),
        macs("00:25:90:00:0", "A:01", "A:02", "A:10"),
        args=("--vlan", "100"),
    ),
]

CASES += [
    Case(
        "warewulf3-node-print",
        ("warewulf/quirks/ww3-fqdn-node-print",),
        (("B4:96:91:34:0F:D0", "r7-c01", "172.29.5.240"), ("B4:96:91:31:CE:B8", "r7-c02", "172.29.5.241")),
        bmc=(("172.29.9.1", "root"), None),
    ),
]

CASES += [
    Case(
        "switch-mac-table",
        ("switch/quirks/nxos.txt",),
        macs("52:54:00:83:0", "0:01", "0:02", "0:12", "1:01"),
        skipped=3,  # vPC peer link, the gateway MAC on sup-eth1, Po100
        args=("--vlan", "30"),
    ),
    Case(
        "switch-mac-table",
        ("switch/quirks/arista.txt",),
        macs("52:54:00:84:0", "0:01", "0:02", "0:03", "4:91"),
        skipped=5,  # Router, the VXLAN tunnel, the multicast group, two on Po10
        args=("--vlan", "VLAN0040"),
    ),
]

CASES += [
    Case("journal-json", ("journal/quirks/journal.json",), macs("52:54:00:75:00:0", "2", "1", "3")),
]

CASES += [
    Case(
        "csm-nodedef",
        ("csm/quirks/nodedef-defaults",),
        (
            ("00:02:55:6A:1B:01", "x01", "10.90.0.1"),
            ("00:02:55:6A:1B:02", "x02", ""),  # an install adapter name is never resolved
            ("00:02:55:6A:1B:11", "p01", "10.90.1.1"),
        ),
        bmc=(("10.91.0.1", "USERID"), None, None),  # x02 unsets PowerMethod; p01 is powered by an HMC
    ),
]

CASES += [
    Case(
        "switch-mac-table",
        ("switch/quirks/cisco-vlan-brief.txt",),
        macs("52:54:00:85:00:0", "1", "2", "3"),
        args=("--vlan", "prov"),  # named in the `show vlan brief` printed with the table
    ),
]

_T = "xcat/quirks/tabdump/"
CASES += [
    Case(
        "xcat-tabdump",
        (f"{_T}mac.csv", f"{_T}nodelist.csv", f"{_T}hosts.csv", f"{_T}ipmi.csv"),
        (
            ("52:54:00:A0:00:01", "t01", "10.100.0.1"),
            ("52:54:00:A0:00:02", "t02", "10.100.0.2"),
            ("52:54:00:A0:00:03", "t03", "10.100.0.3"),
        ),
        skipped=1,  # the switch
        bmc=(("10.101.0.1", "ADMIN"), ("10.101.0.2", "ADMIN"), ("10.101.9.3", "root")),
    ),
]
