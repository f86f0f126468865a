"""Validation of node attribute values set by admins (`node set`, `group set`).

Perceus 1.x stored any string (`enabled` could be "banana", 1.x ref §4.4); we validate and convert.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from perceus.errors import PerceusError, UsageError
from perceus.protocol import names

ALIASES = {"ipaddr": "ip", "groupname": "group", "description": "desc"}
_ATTR = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")


class InvalidValue(PerceusError):
    """A value that does not fit the attribute."""

    def __init__(self, key: str, value: str, why: str) -> None:
        super().__init__(f"invalid {key} {value!r}: {why}")
        self.key = key
        self.value = value


def canonical_key(key: str) -> str:
    key = key.strip().lower()
    return ALIASES.get(key, key)


def valid_hostname(value: str) -> bool:
    return names.valid("node", value)


def parse_value(key: str, value: str) -> Any:
    """Convert `value` for attribute `key` (already canonical) or raise InvalidValue."""
    if key == "hostname":
        if not valid_hostname(value):
            raise InvalidValue(key, value, "use letters, digits, '-', '_' or '.' (max 63)")
        return value
    if key in ("group", "vnfs"):
        if value == "":
            return value
        if not names.valid(key, value):  # fullmatch, never '.' or '..' (one rule: perceus.protocol.names)
            raise InvalidValue(key, value, names.rule(key))
        return value
    if key == "enabled":
        low = value.lower()
        if low in ("1", "yes", "true", "on"):
            return True
        if low in ("0", "no", "false", "off", ""):
            return False
        raise InvalidValue(key, value, "use 1 or 0")
    if key == "debug":
        if value == "":
            return 0
        if not value.isdigit() or not 0 <= int(value) <= 3:
            raise InvalidValue(key, value, "use 0, 1, 2 or 3")
        return int(value)
    if key == "ip":
        if value == "":
            return value
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise InvalidValue(key, value, "not an IPv4 address") from None
    if key == "lastcontact":
        try:
            return float(value or 0)
        except ValueError:
            raise InvalidValue(key, value, "not a number (epoch seconds)") from None
    if key in ("desc", "status"):
        if len(value) > 1024 or "\n" in value:
            raise InvalidValue(key, value, "one line of at most 1024 characters")
        return value
    if not _ATTR.match(key):
        raise UsageError(f"unknown node attribute {key!r}")
    if len(value) > 4096:
        raise InvalidValue(key, value[:20] + "…", "too long")
    return value
