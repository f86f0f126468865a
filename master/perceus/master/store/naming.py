"""Node name allocation from defaults.conf: lowest free numbers first, as Perceus 1.x's next_nodename."""

from __future__ import annotations

from collections.abc import Set

from perceus.errors import ConflictError
from perceus.master.config import NodeDefaults


def allocate_names(used: Set[str], defaults: NodeDefaults, count: int) -> list[str]:
    """The `count` lowest free names in `First Node … First Node + Total Nodes - 1`.

    Unlike the original, which handed out the last candidate again when every name was taken (a duplicate
    hostname, spec §2.3), running out is an error.
    """
    names: list[str] = []
    number = defaults.first
    while len(names) < count:
        if number > defaults.last:
            raise ConflictError(
                f"no free node name left in {defaults.name(defaults.first)}…{defaults.name(defaults.last)}"
                " (raise 'Total Nodes' or change 'Node Name' in defaults.conf)"
            )
        name = defaults.name(number)
        if name not in used:
            names.append(name)
        number += 1
    return names
