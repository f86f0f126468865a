"""ethers(5) files, including the /etc/perceus/ethers that Perceus 1.x writes: `MAC hostname-or-IP`."""

from __future__ import annotations

from perceus.importers.records import Collector, ParseOptions, is_ipv4
from perceus.importers.sniffing import share_of_lines
from perceus.importers.source import Source


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """One node per line; Perceus 1.x comments out keys that are not MACs, so comments are ignored."""
    for src in sources:
        for number, line in enumerate(src.lines, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            where = src.at(number)
            if len(fields) < 2:
                out.error(where, "ethers line has a MAC but no host name or address")
                continue
            host = fields[1]
            if is_ipv4(host):
                out.node(where, fields[0], ip=host)
            else:
                out.host(where, fields[0], hostname=host)


def sniff(text: str) -> int:
    """Lines of exactly `MAC name`."""
    return share_of_lines(text, r"^\s*[0-9A-Fa-f]{1,2}([:-][0-9A-Fa-f]{1,2}){5}\s+[\w.-]+\s*$")
