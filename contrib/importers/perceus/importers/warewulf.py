"""Warewulf: v4 nodes.conf and `wwctl node export` (YAML), v3 `wwsh node print` output.

The provisioning NIC is chosen as Warewulf chooses it (`wwctl upgrade nodes` and the node merge): the node's
`primary network`; else, in legacy files, the netdev flagged `primary` or `default` (Go's ParseBool truth);
else the first netdev by sorted name.  The IPMI address and user (`ipmi: {ipaddr, username}` or the legacy
`ipmi ipaddr` / `ipmi username` keys, from the node or its profiles) are carried as the node's BMC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from perceus.importers.records import Bmc, Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source
from perceus.importers.yamlnodes import Located, YamlError, load

# Key spellings across Warewulf 4.0 … 4.6 (image replaced container in 4.6).
_NETDEVS = ("network devices", "netdevs", "NetDevs")
_IMAGE = ("image name", "container name", "image", "container", "ContainerName")
_PROFILES = ("profiles", "Profiles")


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # strconv.ParseBool


def _primary(node: Located) -> tuple[str, Located] | None:
    """The netdev that provisions: `primary network`, a netdev flagged primary/default, else sorted first."""
    devs = node.get(*_NETDEVS)
    if devs is None or not devs.items:
        return None
    wanted = node.text("primary network", "primarynetwork", "PrimaryNetDev")
    if wanted in devs.items:
        return wanted, devs.items[wanted]
    for name, dev in devs.items.items():
        if dev.text("primary", "Primary") in _TRUE or dev.text("default", "Default") in _TRUE:
            return name, dev
    name = sorted(devs.items)[0]
    return name, devs.items[name]


def _bmc(node: Located, profiles: list[Located]) -> Bmc | None:
    """IPMI address and user name from the node, else from its profiles in order."""

    def value(key: str) -> str:
        for scope in (node, *profiles):
            ipmi = scope.get("ipmi", "Ipmi")
            found = (ipmi.text(key, key.capitalize()) if ipmi is not None else "") or scope.text(f"ipmi {key}")
            if found:
                return found
        return ""

    address = value("ipaddr")
    return Bmc(address, value("username")) if address else None


def _profiles(node: Located) -> list[str]:
    found = node.get(*_PROFILES)
    if found is None:
        return []
    if found.elements:
        return [str(e.value) for e in found.elements if e.value]
    return [p.strip() for p in str(found.value or "").split(",") if p.strip()]


def _nodes(src: Source, out: Collector, *, wrapped: bool) -> None:
    try:
        root = load(src.text)
    except YamlError as err:
        out.error(src.at(err.line), f"not valid YAML: {err}")
        return
    if root is None or not root.items:
        out.error(src.at(1), "no nodes in this file")
        return
    profiles = root.get("nodeprofiles", "NodeProfiles")
    nodes = root.get("nodes", "Nodes") if wrapped else root
    if nodes is not None and nodes is root and "nodes" in root.items:
        nodes = root.items["nodes"]  # an export that is a whole nodes.conf after all
    if nodes is None or not nodes.items:
        out.error(src.at(root.first), "no 'nodes:' mapping")
        return
    for name, node in nodes.items.items():
        where = src.at(node.first - 1 if node.items else node.first, node.last)
        chosen = _primary(node)
        hwaddr = chosen[1].text("hwaddr", "HwAddr") if chosen else ""
        if not chosen or not hwaddr:
            out.skip(where, f"{name}: no network device with a hwaddr")
            continue
        names = _profiles(node)
        found = [profiles.items[p] for p in names if profiles is not None and p in profiles.items]
        vnfs = node.text(*_IMAGE) or next((p.text(*_IMAGE) for p in found if p.text(*_IMAGE)), "")
        ip = chosen[1].text("ipaddr", "IpAddr").split("/", 1)[0]
        out.node(
            where,
            hwaddr,
            hostname=name,
            ip=ip,
            group=names[0] if names else "",
            vnfs=vnfs,
            bmc=_bmc(node, found),
        )


def parse_nodes_conf(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        _nodes(src, out, wrapped=True)


def parse_node_export(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        _nodes(src, out, wrapped=False)


# -- Warewulf 3: `wwsh node print` prints `NAME: KEY = value`, devices as `eth0.HWADDR`.
_WW3_LINE = re.compile(r"^\s*([^\s:]+):\s+([\w.:-]+)\s*=\s*(.*?)\s*$")


@dataclass
class _Ww3Node:
    first: int
    last: int
    attrs: dict[str, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)


def _value(text: str) -> str:
    return "" if text.upper() == "UNDEF" else text


def parse_ww3(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        nodes: dict[str, _Ww3Node] = {}
        for number, line in enumerate(src.lines, 1):
            match = _WW3_LINE.match(line)
            if match is None:
                continue
            name, key, value = match.groups()
            node = nodes.setdefault(name, _Ww3Node(number, number))
            node.last = number
            node.attrs[key.upper()] = _value(value)
            if key.upper().endswith(".HWADDR"):
                node.devices.append(key.rsplit(".", 1)[0])
        for name, node in nodes.items():
            where = src.at(node.first, node.last)
            with_hw = [d for d in node.devices if node.attrs.get(f"{d.upper()}.HWADDR")]
            if not with_hw:
                out.skip(where, f"{name}: no device with a HWADDR")
                continue
            dev = "eth0" if "eth0" in with_hw else with_hw[0]
            groups = [g.strip() for g in node.attrs.get("GROUPS", "").split(",") if g.strip()]
            out.node(
                where,
                node.attrs[f"{dev.upper()}.HWADDR"],
                # NODENAME is the short name; NAME lists the name and its FQDN (`n01,n01.hpc`)
                hostname=node.attrs.get("NODENAME") or node.attrs.get("NAME", "").split(",")[0] or name,
                ip=node.attrs.get(f"{dev.upper()}.IPADDR", ""),
                group=groups[0] if groups else "",
                vnfs=node.attrs.get("VNFS", ""),
                bmc=Bmc(ipmi, node.attrs.get("IPMI_USERNAME", "")) if (ipmi := node.attrs.get("IPMI_IPADDR")) else None,
            )


def sniff_nodes_conf(text: str) -> int:
    return has(text, r"^nodes:\s*$", 60) + has(text, r"^(nodeprofiles:|WW_INTERNAL:)", 35)


def sniff_node_export(text: str) -> int:
    return (
        has(text, r"^\S[^:\n]*:\s*$", 20)
        + has(text, r"^\s+(network devices|netdevs):\s*$", 55)
        - has(text, r"^(nodes|nodeprofiles):\s*$", 60)
    )


def sniff_ww3(text: str) -> int:
    return has(text, r"^\s*\S+:\s+\S+\.HWADDR\s+=", 95)
