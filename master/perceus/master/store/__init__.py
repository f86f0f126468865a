"""Node store: the repository interface and its backends."""

from __future__ import annotations

from perceus.master.config import MasterConfig, Paths
from perceus.master.store.base import NodeStore


def open_store(paths: Paths, config: MasterConfig | None = None) -> NodeStore:
    """Open the backend perceus.conf selects (SQLite by default)."""
    config = config or MasterConfig.load(paths)
    if config.database.startswith(("postgresql://", "postgres://")):
        from perceus.master.store.postgres import PostgresStore  # optional extra: psycopg

        return PostgresStore(config.database)
    from perceus.master.store.sqlite import SQLiteStore

    return SQLiteStore(paths.database)


__all__ = ["NodeStore", "open_store"]
