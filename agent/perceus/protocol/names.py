"""One validation for the names that become path components, shell words and DNS labels: node (host), group,
vnfs and state names.  Used by the CLI, the bus, the legacy listener, the importers and the agent.

Every rule is a `fullmatch` (a `$` anchor lets a trailing newline through), ASCII only, no control characters,
never `.` or `..` and never a leading dot (hidden and temporary files), bounded length.  Perceus 1.x stored
whatever it was given and put some of it into shell command lines (1.x ref §4.4, §13).
"""

from __future__ import annotations

import re

from perceus.errors import PerceusError

_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", re.ASCII)
_WORD = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}", re.ASCII)
_STATE = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)
KINDS = ("node", "group", "vnfs", "state")


class InvalidName(PerceusError):
    """A name that may not be used as a path component (or hostname)."""

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"invalid {kind} name {value[:80]!r}: {rule(kind)}")
        self.kind = kind
        self.value = value


def rule(kind: str) -> str:
    if kind == "state":
        return "use 1-32 letters, digits or '_'"
    if kind == "node":
        return "start with a letter or digit, then letters, digits, '-', '_' or '.' (max 63)"
    return "letters, digits, '-', '_' or '.', not starting with '.' (max 64)"


def valid(kind: str, value: object) -> bool:
    """True if `value` is a usable `kind` name ("node", "group", "vnfs" or "state")."""
    if not isinstance(value, str):
        return False
    if kind == "state":
        return _STATE.fullmatch(value) is not None
    pattern = _HOST if kind == "node" else _WORD
    return pattern.fullmatch(value) is not None and value not in (".", "..") and ".." not in value.split("/")


def check(kind: str, value: str) -> str:
    """`value` if valid, else InvalidName (a one-line error naming the rule)."""
    if kind not in KINDS:
        raise ValueError(f"unknown name kind {kind!r}")
    if not valid(kind, value):
        raise InvalidName(kind, value)
    return value
