"""Node name allocation from defaults.conf: lowest free numbers first, as Perceus 1.x's next_nodename."""

from __future__ import annotations

from collections.abc import Set

from perceus.errors import ConflictError
from perceus.master.config import NodeDefaults


def allocate_names(
    used: Set[str], defaults: NodeDefaults, count: int, *, taken: Set[int] = frozenset(), start: int = 0
) -> list[str]:
    """The `count` lowest free names in `First Node … First Node + Total Nodes - 1`.

    Unlike the original, which handed out the last candidate again when every name was taken (a duplicate
    hostname, 1.x ref §2.3), running out is an error.  `taken` is a precomputed set of used numbers (the store
    caches it), `used` any further names to avoid, `start` a number below which everything is known taken.
    """
    numbers = allocate_numbers(taken | numbers_of(used, defaults) if used else taken, defaults, count, start=start)
    return [defaults.name(n) for n in numbers]


def allocate_numbers(taken: Set[int], defaults: NodeDefaults, count: int, *, start: int = 0) -> list[int]:
    """The numbers behind `allocate_names`, lowest first."""
    out: list[int] = []
    number = max(defaults.first, start)
    while len(out) < count:
        if number > defaults.last:
            raise ConflictError(
                f"no free node name left in {defaults.name(defaults.first)}…{defaults.name(defaults.last)}"
                " (raise 'Total Nodes' or change 'Node Name' in defaults.conf)"
            )
        if number not in taken:
            out.append(number)
        number += 1
    return out


def numbers_of(used: Set[str], defaults: NodeDefaults) -> set[int]:
    """The numbers of used names that fit the template exactly (integers compare faster than names)."""
    prefix, suffix = defaults.prefix, defaults.suffix
    out: set[int] = set()
    for name in used:
        if name.startswith(prefix) and name.endswith(suffix):
            digits = name[len(prefix) : len(name) - len(suffix)]
            if digits.isdigit() and digits.isascii() and len(digits) >= defaults.width:
                number = int(digits)
                if defaults.name(number) == name:
                    out.add(number)
    return out
