"""snmpwalk of the Q-BRIDGE-MIB forwarding table (dot1qTpFdbPort), with BRIDGE-MIB port map and ifName."""

from __future__ import annotations

import re

from perceus.importers.ports import Entry, emit, is_logical, is_multicast
from perceus.importers.records import Collector, Location, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

FDB_PORT = "1.3.6.1.2.1.17.7.1.2.2.1.2"  # dot1qTpFdbPort.<fdbId>.<mac as 6 decimals>
FDB_STATUS = "1.3.6.1.2.1.17.7.1.2.2.1.3"  # dot1qTpFdbStatus: other 1, invalid 2, learned 3, self 4, mgmt 5
VLAN_FDB_ID = "1.3.6.1.2.1.17.7.1.4.2.1.3"  # dot1qVlanFdbId.<time mark>.<vlan> = the FDB that VLAN learns into
VLAN_NAME = "1.3.6.1.2.1.17.7.1.4.3.1.1"  # dot1qVlanStaticName.<vlan>
_SELF, _INVALID = 4, 2  # mgmt (5) is a static entry (dot1qStaticUnicast): a configured node port, it counts
OLD_FDB_PORT = "1.3.6.1.2.1.17.4.3.1.2"  # BRIDGE-MIB dot1dTpFdbPort.<mac> (switches without Q-BRIDGE)
OLD_FDB_STATUS = "1.3.6.1.2.1.17.4.3.1.3"  # dot1dTpFdbStatus.<mac>, the same values
BASE_PORT_IFINDEX = "1.3.6.1.2.1.17.1.4.1.2"  # dot1dBasePortIfIndex.<bridge port>
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"

_SYMBOLS = {
    "Q-BRIDGE-MIB::dot1qTpFdbPort": FDB_PORT,
    "Q-BRIDGE-MIB::dot1qTpFdbStatus": FDB_STATUS,
    "Q-BRIDGE-MIB::dot1qVlanFdbId": VLAN_FDB_ID,
    "Q-BRIDGE-MIB::dot1qVlanStaticName": VLAN_NAME,
    "BRIDGE-MIB::dot1dTpFdbPort": OLD_FDB_PORT,
    "BRIDGE-MIB::dot1dTpFdbStatus": OLD_FDB_STATUS,
    "BRIDGE-MIB::dot1dBasePortIfIndex": BASE_PORT_IFINDEX,
    "IF-MIB::ifName": IF_NAME,
    "IF-MIB::ifDescr": IF_DESCR,
    "SNMPv2-SMI::mib-2": "1.3.6.1.2.1",
    "RFC1213-MIB::ifDescr": IF_DESCR,
    "mib-2": "1.3.6.1.2.1",
    "iso": "1",
}
_TABLES = (
    FDB_PORT,
    FDB_STATUS,
    OLD_FDB_PORT,
    OLD_FDB_STATUS,
    BASE_PORT_IFINDEX,
    IF_NAME,
    IF_DESCR,
    VLAN_FDB_ID,
    VLAN_NAME,
)
_FDB_TABLES = (FDB_PORT, FDB_STATUS, OLD_FDB_PORT, OLD_FDB_STATUS)
_OLD_TABLES = (OLD_FDB_PORT, OLD_FDB_STATUS)
_LINE = re.compile(r"^\s*(\S+?)\s*(?:=\s*(?:([\w-]+):\s*)?(.*)|\s(.*))$")
_BRACKETS = re.compile(r"\[([^\]]*)\]")


def _oid(name: str) -> str | None:
    """Numeric OID of a printed name; -OX bracket indexes become dotted decimals; None when unparseable."""
    name = name.lstrip(".")
    index = ""
    if "[" in name:
        parts = _BRACKETS.findall(name)
        name = name[: name.index("[")]
        decimals = []
        for part in parts:
            part = part.strip("\"'")  # noqa: PLW2901 - the loop value normalised in place
            if re.fullmatch(r"\d+", part):
                decimals.append(part)
            elif re.fullmatch(r"[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}", part):
                decimals.extend(str(int(o, 16)) for o in part.split(":"))
            else:
                return None
        index = "." + ".".join(decimals)
    for symbol in sorted(_SYMBOLS, key=len, reverse=True):
        if name == symbol or name.startswith(symbol + "."):
            name = _SYMBOLS[symbol] + name[len(symbol) :]
            break
    return name + index if re.fullmatch(r"\d+(\.\d+)*", name + index) else None


def _integer(value: str) -> int | None:
    match = re.search(r"(-?\d+)\)?\s*$", value)  # INTEGER: 3, learned(3), Gauge32: 3
    return int(match.group(1)) if match else None


def _mac_of(decimals: list[str]) -> str | None:
    if len(decimals) != 6 or not all(d.isdigit() and int(d) < 256 for d in decimals):
        return None
    return ":".join(f"{int(d):02X}" for d in decimals)


def _wanted_fdbs(wanted: str | None, vlan_names: dict[str, str], fdb_of_vlan: dict[str, str]) -> set[str] | None:
    """The FDB ids of `--vlan` (a number or a dot1qVlanStaticName); None reads every VLAN."""
    if wanted is None:
        return None
    vlans = {v for v, name in vlan_names.items() if name.lower() == wanted.lower()}
    if wanted.isdigit():
        vlans.add(str(int(wanted)))
    return {fdb_of_vlan.get(v, v) for v in vlans} | {""}


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    ports: list[tuple[str, int, str, Location]] = []  # (fdb id, bridge port, mac, where)
    status: dict[tuple[str, str], int] = {}
    ifindex: dict[int, int] = {}
    names: dict[int, str] = {}
    descrs: dict[int, str] = {}
    vlan_names: dict[str, str] = {}
    fdb_of_vlan: dict[str, str] = {}
    for src in sources:
        for number, line in enumerate(src.lines, 1):
            match = _LINE.match(line)
            if match is None or (not match.group(1)[:1].isalnum() and match.group(1)[:1] != "."):
                continue
            name, value = (
                match.group(1),
                (match.group(3) if match.group(3) is not None else match.group(4) or ""),
            )
            value = value.strip().strip('"')
            oid = _oid(name)
            where = src.at(number)
            if oid is None:
                if "dot1qTpFdb" in name or "dot1dTpFdb" in name:
                    out.error(where, "MAC index printed as a string; rerun snmpwalk with -On (numeric OIDs)")
                continue
            for table in _TABLES:
                if oid.startswith(table + "."):
                    index = oid[len(table) + 1 :].split(".")
                    break
            else:
                continue
            if table in _FDB_TABLES:
                fdb = "" if table in _OLD_TABLES else index[0]
                mac = _mac_of(index if table in _OLD_TABLES else index[1:])
                number_value = _integer(value)
                if mac is None or number_value is None:
                    out.error(where, f"unreadable forwarding entry {name} = {value}")
                elif table in (FDB_STATUS, OLD_FDB_STATUS):
                    status[(fdb, mac)] = number_value
                else:
                    ports.append((fdb, number_value, mac, where))
            elif table == VLAN_FDB_ID and (fdb_id := _integer(value)) is not None:
                fdb_of_vlan[index[-1]] = str(fdb_id)
            elif table == VLAN_NAME and len(index) == 1:
                vlan_names[index[0]] = value
            elif len(index) == 1 and index[0].isdigit():
                key = int(index[0])
                if table == BASE_PORT_IFINDEX and (number_value := _integer(value)) is not None:
                    ifindex[key] = number_value
                elif table == IF_NAME:
                    names[key] = value
                elif table == IF_DESCR:
                    descrs[key] = value
    wanted = _wanted_fdbs(options.vlan, vlan_names, fdb_of_vlan)
    entries: list[Entry] = []
    for fdb, bridge_port, mac, where in ports:
        in_vlan = wanted is None or fdb in wanted
        state = status.get((fdb, mac), 3)
        if state in (_SELF, _INVALID) or bridge_port == 0:
            if in_vlan:
                out.skip(where, f"{mac}: the switch's own address, not a node")
            continue
        if is_multicast(mac):
            if in_vlan:
                out.skip(where, f"{mac}: multicast address")
            continue
        # Without dot1dBasePortIfIndex, take bridge port = ifIndex, as on most switches.
        if_index = ifindex.get(bridge_port, bridge_port)
        port = names.get(if_index) or descrs.get(if_index) or f"port{bridge_port:05d}"
        if is_logical(port):
            if in_vlan:
                out.skip(where, f"{mac}: on {port}, not a front port")
            continue
        entries.append(Entry(port, mac, where, in_vlan))
    emit(entries, out)


def sniff(text: str) -> int:
    return has(
        text,
        r"dot1qTpFdbPort|(^|\s)\.?1\.3\.6\.1\.2\.1\.17\.7\.1\.2\.2\.1\.2\.|mib-2\.17\.7\.1\.2\.2\.1\.2\.",
        95,
    )
