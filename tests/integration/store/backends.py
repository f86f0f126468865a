"""The store under test, as the contract tests see it: open more connections, run raw SQL behind its back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceus.master.store import NodeStore


@dataclass
class Backend:
    """How to open (more connections to) the store under test, and run raw SQL on it."""

    kind: str
    target: str  # SQLite path or PostgreSQL URL

    def open(self) -> NodeStore:
        if self.kind == "sqlite":
            from perceus.master.store.sqlite import SQLiteStore

            return SQLiteStore(Path(self.target))
        from perceus.master.store.postgres import PostgresStore

        return PostgresStore(self.target)

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        """Raw SQL behind the store's back (to fake a newer schema, count rows)."""
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.target) as db:
                return db.execute(statement).fetchall()
        import psycopg

        with psycopg.connect(self.target, autocommit=True) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []
