"""Stanza files (`name:` headers, `attr=value` lines): CSM nodedef, xCAT stanza and lsdef output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from perceus.importers.source import Source


@dataclass
class Stanza:
    """One object: its header name, attributes (later lines win) and the lines it spans."""

    name: str
    first: int
    last: int
    attrs: dict[str, str] = field(default_factory=dict)


def read(src: Source, header: re.Pattern[str], attr: re.Pattern[str]) -> Iterator[Stanza | tuple[int, str]]:
    """Stanzas in file order; a line that is neither header nor attribute is yielded as (line, text)."""
    current: Stanza | None = None
    for number, raw in enumerate(src.lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if (match := header.match(line)) is not None:
            if current is not None:
                yield current
            current = Stanza(match.group(1).strip(), number, number)
            continue
        if (match := attr.match(line)) is not None and current is not None:
            current.attrs[match.group(1).strip()] = match.group(2).strip()
            current.last = number
            continue
        yield number, line
    if current is not None:
        yield current
