"""What the two SQL backends spell differently, and the cursor the shared store rules write through.

SQLite (>= 3.35) and PostgreSQL agree on the rest of what the rules use: `INSERT … ON CONFLICT (…) DO UPDATE
SET x = excluded.x` for upserts, `RETURNING`, `<>`, `LIKE … ESCAPE`.  So a dialect is only the placeholder
and the "column is one of these values" operator, which takes the values as one parameter (no statement
per list length, no SQLite variable limit).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast


class Rows(Protocol):
    """What a statement returns: sqlite3 and psycopg cursors both fit."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class Dialect:
    """Placeholder and one-of operator of one backend."""

    name: str
    placeholder: str
    one_of: str  # "{column} …" taking the values as one parameter
    values: Callable[[Sequence[Any]], Any]  # the Python form of that parameter
    _spelled: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def spell(self, sql: str) -> str:
        """`sql` written with `?` placeholders, in this dialect (cached: the rules reuse few statements)."""
        if self.placeholder == "?":
            return sql
        spelled = self._spelled.get(sql)
        if spelled is None:
            spelled = self._spelled[sql] = sql.replace("?", self.placeholder)
        return spelled

    def any_of(self, column: str) -> str:
        """A condition true when `column` is one of the values bound to its `?`."""
        return self.one_of.format(column=column)


SQLITE = Dialect("sqlite", "?", "{column} IN (SELECT value FROM json_each(?))", lambda v: json.dumps(list(v)))
POSTGRESQL = Dialect("postgresql", "%s", "{column} = ANY(?)", list)


class Tx:
    """One transaction (or autocommit connection) as the shared rules see it: `?` placeholders everywhere."""

    __slots__ = ("_cur", "dialect")

    def __init__(self, cur: Any, dialect: Dialect) -> None:
        self._cur = cur  # sqlite3.Connection or psycopg.Cursor: both execute() and return their rows
        self.dialect = dialect

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return cast(Rows, self._cur.execute(self.dialect.spell(sql), args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cur.executemany(self.dialect.spell(sql), rows)

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        """The condition and its one parameter: `where, arg = tx.any_of("mac", macs)`."""
        return self.dialect.any_of(column), self.dialect.values(values)
