"""Node arguments: Perceus 1.x globs (`*`, `?`, `|`, 1.x ref §4.2) and hostlist ranges (`n[0001-0128],n0200`).

Brackets are expanded with ClusterShell's NodeSet (the HPC standard), which pads each number to the width
of its literal digits — the same rule Perceus 1.x used, without its last-bracket-only limitation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from perceus.errors import UsageError
from perceus.master.store.models import Node
from perceus.protocol import hwaddr

_GLOB_CHARS = set("*?|")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The original's conversion: `*` → `.*` (unless after `.`), `?` → `.`, other regex syntax kept."""
    out = []
    for i, ch in enumerate(pattern):
        if ch == "*" and (i == 0 or pattern[i - 1] != "."):
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(ch)
    try:
        return re.compile("^(?:" + "".join(out) + ")$")
    except re.error as exc:
        raise UsageError(f"bad node pattern {pattern!r}: {exc}") from None


def expand(spec: str) -> list[str]:
    """Expand one argument's ranges (no globbing)."""
    if "[" not in spec:
        return [s for s in spec.split(",") if s]
    try:
        return list(NodeSet(spec))
    except (NodeSetParseError, ValueError) as exc:
        raise UsageError(f"bad node range {spec!r}: {exc}") from None


def select(nodes: Sequence[Node], specs: Iterable[str], *, by_nodeid: bool = False) -> tuple[list[Node], list[str]]:
    """The nodes matching any spec (sorted by hostname) and the specs that matched nothing."""
    by_name = {n.hostname: n for n in nodes}
    by_mac: dict[str, Node] = {m: n for n in nodes for m in (n.nodeid, *n.macs)}
    chosen: dict[str, Node] = {}
    missing: list[str] = []
    for spec in specs:
        if by_nodeid:
            try:
                node = by_mac.get(hwaddr.normalize(spec))
            except Exception:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
                node = None
            if node is None:
                missing.append(spec)
            else:
                chosen[node.nodeid] = node
            continue
        if _GLOB_CHARS & set(spec) and "[" not in spec:
            rx = glob_to_regex(spec)
            hits = [n for n in nodes if rx.match(n.hostname)]
            if not hits:
                missing.append(spec)
            chosen.update((n.nodeid, n) for n in hits)
            continue
        for name in expand(spec):
            node = by_name.get(name)
            if node is None and hwaddr.is_valid(name):
                node = by_mac.get(hwaddr.normalize(name))
            if node is None:
                missing.append(name)
            else:
                chosen[node.nodeid] = node
    return sorted(chosen.values(), key=lambda n: n.hostname), missing


def fold(names: Iterable[str]) -> str:
    """Compact a list of hostnames into hostlist syntax for messages: n[0000-0099]."""
    try:
        return str(NodeSet.fromlist(list(names)))
    except (NodeSetParseError, ValueError):
        return ",".join(names)
