"""Plain MAC lists: one address per line, nodes named from the template in list order."""

from __future__ import annotations

import re

from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import share_of_lines
from perceus.importers.source import Source

_FIELD = re.compile(r"[\s,;]+")


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """The first field of each line is the MAC; `#` starts a comment; anything after the MAC is ignored."""
    for src in sources:
        for number, line in enumerate(src.lines, 1):
            text = line.split("#", 1)[0].strip()
            if text:
                out.node(src.at(number), _FIELD.split(text, 1)[0])


def sniff(text: str) -> int:
    return share_of_lines(
        text,
        r"^\s*([0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2})\s*$",
        weight=70,
    )
