"""Kea DHCPv4 configuration (kea-dhcp4.conf): host reservations, global and per subnet / shared network."""

from __future__ import annotations

from perceus.importers.jsonc import JsonError, Node, parse_text
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source


def _reservations(scope: Node) -> list[Node]:
    found = scope.items.get("reservations")
    return found.elements if found is not None else []


def _subnets(scope: Node) -> list[Node]:
    found = scope.items.get("subnet4")
    return found.elements if found is not None else []


def _all_reservations(dhcp4: Node) -> list[Node]:
    """Global reservations first, then each subnet's (shared networks' subnets in their place)."""
    out = list(_reservations(dhcp4))
    for subnet in _subnets(dhcp4):
        out.extend(_reservations(subnet))
    shared = dhcp4.items.get("shared-networks")
    for network in shared.elements if shared is not None else []:
        out.extend(_reservations(network))
        for subnet in _subnets(network):
            out.extend(_reservations(subnet))
    return out


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        try:
            root = parse_text(src, out)
        except JsonError as err:
            out.error(err.where, str(err))
            continue
        dhcp4 = root.items.get("Dhcp4", root if "subnet4" in root.items or "reservations" in root.items else None)
        if dhcp4 is None:
            out.error(src.at(1), "no Dhcp4 object")
            continue
        for res in _all_reservations(dhcp4):
            hwaddr = res.text("hw-address") or res.text("client-id")
            if not hwaddr:
                ident = next((k for k in ("duid", "circuit-id", "flex-id") if k in res.items), "no identifier")
                out.skip(res.where, f"reservation by {ident}, no hardware address (hardware-less host)")
                continue
            out.node(res.where, hwaddr, hostname=res.text("hostname"), ip=res.text("ip-address"))


def sniff(text: str) -> int:
    return has(text, r'"Dhcp4"\s*:', 90) + has(text, r'"hw-address"|"subnet4"', 10)
