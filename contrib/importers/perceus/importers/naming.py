"""Name templates in the Perceus 1.x `n####` syntax: a prefix, a run of `#` (the zero-pad width), a suffix."""

from __future__ import annotations

import re
from collections.abc import Iterator, Set
from dataclasses import dataclass

from perceus.errors import UsageError

DEFAULT_TEMPLATE = "n####"  # Perceus 1.x defaults.conf "Node Name"
_TEMPLATE = re.compile(r"^([^#]+)(#+)([^#]*)$")


@dataclass(frozen=True)
class NameTemplate:
    """A parsed template; names count up from `first` and skip names already taken."""

    prefix: str
    width: int
    suffix: str
    first: int = 0

    @classmethod
    def parse(cls, text: str) -> NameTemplate:
        match = _TEMPLATE.match(text)
        if match is None:
            raise UsageError(f"bad name template {text!r} (expected a prefix, a run of '#', an optional suffix)")
        prefix, hashes, suffix = match.groups()
        return cls(prefix, len(hashes), suffix)

    def name(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}{self.suffix}"

    def free_names(self, used: Set[str]) -> Iterator[str]:
        """Names in order, lowest first, leaving out `used` (as Perceus 1.x next_nodename)."""
        number = self.first
        while number < 10**self.width:
            name = self.name(number)
            if name not in used:
                yield name
            number += 1
