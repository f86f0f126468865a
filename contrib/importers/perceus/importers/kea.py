"""Kea DHCPv4 configuration (kea-dhcp4.conf): host reservations, global and per subnet / shared network.

Kea's own reader takes `#`, `//` and `/* */` comments and `<?include "file"?>`; so does ours (jsonc.py).
A reservation names its client by `hw-address`, `client-id` (type 1 carries the MAC), `duid`, `circuit-id`
or `flex-id`; only the first two identify hardware.
"""

from __future__ import annotations

from perceus.importers.jsonc import JsonError, Node, parse_text
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

_SCOPES = ("subnet4", "shared-networks")


def _all_reservations(scope: Node, found: list[Node]) -> list[Node]:
    """Reservations in document order: global, shared-network and subnet ones as the file lists them."""
    for key, child in scope.items.items():
        if key == "reservations":
            found.extend(child.elements)
        elif key in _SCOPES:
            for inner in child.elements:
                _all_reservations(inner, found)
    return found


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
        for res in _all_reservations(dhcp4, []):
            hwaddr = res.text("hw-address") or res.text("client-id")
            if hwaddr.startswith("'"):  # a client-id written as 'text': no hardware address in it
                out.skip(res.where, f"reservation by text client-id {hwaddr}, no hardware address")
                continue
            if not hwaddr:
                ident = next((k for k in ("duid", "circuit-id", "flex-id") if k in res.items), "no identifier")
                out.skip(res.where, f"reservation by {ident}, no hardware address (hardware-less host)")
                continue
            out.host(res.where, hwaddr, hostname=res.text("hostname"), ip=res.text("ip-address"))


def sniff(text: str) -> int:
    return has(text, r'"Dhcp4"\s*:', 90) + has(text, r'"hw-address"|"subnet4"', 10)
