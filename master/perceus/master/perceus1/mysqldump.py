"""Perceus 1.x MySQL backend, read from a `mysqldump` file: the `perceus_<field>` tables (nodeid, value).

Only the statements that matter are parsed (CREATE TABLE for the attribute list, INSERT/REPLACE for rows),
with MySQL's string escapes; a live server is not contacted (no MySQL client library is a dependency).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from perceus.errors import PerceusError

PREFIX = "perceus_"
_CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?([A-Za-z0-9_$]+)`?", re.IGNORECASE)
_INSERT = re.compile(
    r"(?:INSERT|REPLACE)\s+(?:LOW_PRIORITY\s+|DELAYED\s+|HIGH_PRIORITY\s+)?(?:IGNORE\s+)?INTO\s+"
    r"`?([A-Za-z0-9_$]+)`?\s*(\([^)]*\))?\s*VALUES\s*",
    re.IGNORECASE,
)
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


class MysqlDumpError(PerceusError):
    """A mysqldump file could not be parsed."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class DumpTables:
    """Attribute tables found in a dump: field → {nodeid: value}, plus tables that are not Perceus's."""

    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _string(text: str, i: int, path: Path) -> tuple[str, int]:
    quote = text[i]
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif c == quote:
            if i + 1 < len(text) and text[i + 1] == quote:  # '' inside a string
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise MysqlDumpError(path, "unterminated string in INSERT statement")


def _rows(text: str, i: int, path: Path) -> tuple[list[list[str | None]], int]:
    """Parse `(v, v), (v, v) ;` starting at `i`; returns rows and the index after the `;`."""
    rows: list[list[str | None]] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == ";":
            return rows, i + 1
        if text[i] != "(":
            raise MysqlDumpError(path, f"unexpected {text[i]!r} in INSERT values")
        i += 1
        row: list[str | None] = []
        while True:
            while i < n and text[i] in " \t\r\n":
                i += 1
            if i >= n:
                raise MysqlDumpError(path, "unterminated row in INSERT statement")
            if text[i] in "'\"":
                value, i = _string(text, i, path)
                row.append(value)
            else:
                j = i
                while j < n and text[j] not in ",)":
                    j += 1
                token = text[i:j].strip()
                row.append(None if token.upper() == "NULL" else token)
                i = j
            while i < n and text[i] in " \t\r\n":
                i += 1
            if i < n and text[i] == ",":
                i += 1
                continue
            if i < n and text[i] == ")":
                i += 1
                rows.append(row)
                break
            raise MysqlDumpError(path, "malformed row in INSERT statement")


def _columns(spec: str | None) -> tuple[int, int]:
    if not spec:
        return 0, 1
    names = [c.strip().strip("`").lower() for c in spec.strip("()").split(",")]
    try:
        return names.index("nodeid"), names.index("value")
    except ValueError:
        return 0, 1


def parse(path: Path) -> DumpTables:
    """Read the `perceus_*` tables of a mysqldump file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MysqlDumpError(path, exc.strerror or str(exc)) from None
    result = DumpTables()
    for created in _CREATE.finditer(text):
        name = created.group(1)
        if name.startswith(PREFIX):
            result.tables.setdefault(name.removeprefix(PREFIX), {})
        elif name not in result.ignored:
            result.ignored.append(name)
    pos = 0
    while (match := _INSERT.search(text, pos)) is not None:
        name = match.group(1)
        rows, pos = _rows(text, match.end(), path)
        if not name.startswith(PREFIX):
            if name not in result.ignored:
                result.ignored.append(name)
            continue
        key_i, value_i = _columns(match.group(2))
        table = result.tables.setdefault(name.removeprefix(PREFIX), {})
        for row in rows:
            if len(row) <= max(key_i, value_i) or row[key_i] is None:
                raise MysqlDumpError(path, f"row of {name} without a nodeid")
            table[str(row[key_i])] = row[value_i] or ""  # 1.x stored NULL/0 as "" anyway
    if not result.tables:
        raise MysqlDumpError(path, "no perceus_* tables found (is this a dump of the Perceus database?)")
    return result
