"""Roles (`<state>/all`, `<state>/group/<g>`, `<state>/vnfs/<v>`, `<state>/node/<n>`) ↔ store activations.

Unlike Perceus 1.x, whose CLI accepted only `[A-Za-z0-9]+` per path part (1.x ref §4.7), names may contain
`-`, `_` and `.` as node, group and capsule names do; `..` and `/` inside a name are still refused because a
role is also a directory under the nodescripts tree.
"""

from __future__ import annotations

import re

from perceus.errors import UsageError
from perceus.master.store.models import Activation, Node

_STATE = re.compile(r"^\w{1,32}$", re.ASCII)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MODULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_module_name(name: str) -> bool:
    return bool(_MODULE.match(name)) and ".." not in name


def parse_role(module: str, role: str) -> Activation:
    """`ready/group/gpu` → Activation(module, "ready", "group", "gpu"); UsageError naming the role if bad."""
    parts = role.strip("/").split("/")
    state = parts[0]
    if not _STATE.match(state):
        raise UsageError(f"inappropriate role {role!r}: the state must be a word (init, ready …)")
    if parts[1:] == ["all"]:
        return Activation(module=module, state=state, scope="all")
    if len(parts) == 3 and parts[1] in ("group", "vnfs", "node"):
        name = parts[2]
        if not _NAME.match(name) or ".." in name:
            raise UsageError(f"inappropriate role {role!r}: {name!r} is not a valid {parts[1]} name")
        return Activation(module=module, state=state, scope=parts[1], target=name)
    raise UsageError(f"inappropriate role {role!r} (use STATE/all, STATE/group/G, STATE/vnfs/V or STATE/node/N)")


def applies(activation: Activation, node: Node) -> bool:
    """Does an activation's scope cover `node` (state aside)?"""
    scope = activation.scope
    if scope == "all":
        return True
    if scope == "group":
        return node.group == activation.target
    if scope == "vnfs":
        return node.vnfs == activation.target
    if scope == "node":
        return node.hostname == activation.target
    return False


def overlap(a: Activation, b: Activation) -> bool:
    """Could one node be covered by both activations?  Different scope kinds can always meet on one node (a
    node has a group and a vnfs); the same kind meets only on the same target.  The state is ignored on
    purpose: two modules writing /etc/passwd at different states still fight over the file."""
    if a.scope == "all" or b.scope == "all" or a.scope != b.scope:
        return True
    return a.target == b.target
