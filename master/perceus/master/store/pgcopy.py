"""Copy a whole SQLite node store into PostgreSQL in one transaction (`perceus configure database --from-sqlite`).

Rows are copied as they are (ids, timestamps, status, boot timelines), not re-added through the store API, so
nothing an admin or a node wrote is lost or renamed on the way to a multi-master setup.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import structlog

from perceus.errors import ConflictError, NotFoundError, PerceusError
from perceus.master.store.base import SCHEMA_VERSION
from perceus.master.store.pglisten import redact
from perceus.master.store.postgres import LOCK_NAMES, PostgresStore

log = structlog.get_logger("perceus.store")

# Parents before children (foreign keys); the columns both schemas share.
TABLES: dict[str, tuple[str, ...]] = {
    "node": (
        "id", "nodeid", "hostname", "grp", "vnfs", "enabled", "debug", "descr", "ip", "status", "lastcontact",
        "boot_id", "phase", "created", "updated",
    ),
    "node_mac": ("mac", "node_id"),
    "node_attr": ("node_id", "key", "value"),
    "event": ("id", "nodeid", "boot_id", "phase", "t", "ok", "done", "detail"),
    "pending": ("nodeid", "macs", "ip", "first_seen", "last_seen", "nodename"),
    "module_activation": ("module", "state", "scope", "target", "created"),
    "node_inventory": ("node_id", "stage", "boot_id", "t", "data"),
    "node_hwchange": ("node_id", "item", "kind", "since", "was", "now"),
}  # fmt: skip
_IDENTITY = ("node", "event")


def _open_source(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFoundError("SQLite node database", str(path))
    try:
        # Read-only: the source stays exactly as it was, whatever happens here.
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        row = src.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise PerceusError(f"cannot read node database {path}: {exc}") from None
    version = row[0] if row else 0
    if version != SCHEMA_VERSION:
        src.close()
        raise ConflictError(
            f"node database {path} has schema {version}, this Perceus copies schema {SCHEMA_VERSION}"
            " (open it once with this Perceus and the SQLite backend to migrate it)"
        )
    return src


def copy_sqlite(source: Path, target: PostgresStore, *, force: bool = False) -> dict[str, int]:
    """Copy every row of every table; refuse a non-empty target unless `force`; verify the counts.

    Returns the number of rows copied per table.  On any error the target is left as it was.
    """
    src = _open_source(source)
    try:
        with src:
            src.execute("BEGIN")  # one consistent read snapshot of the source
            present_in_source = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            rows = {
                t: src.execute(f"SELECT {', '.join(c)} FROM {t}").fetchall() if t in present_in_source else []
                for t, c in TABLES.items()
            }
    finally:
        src.close()
    where = redact(target.url)
    try:
        with psycopg.connect(target.url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x50455243, LOCK_NAMES))
            # Running masters wait for the copy to commit instead of writing into a half-copied store.
            cur.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            present = {t: _count(cur, t) for t in TABLES}
            if any(present.values()) and not force:
                raise ConflictError(
                    f"node database {where} is not empty ({present['node']} nodes, {present['event']} events,"
                    f" {present['pending']} pending); use --force to replace its contents"
                )
            for table in reversed(TABLES):
                cur.execute(f"DELETE FROM {table}")  # DELETE, not TRUNCATE: the node_changed trigger fires
            for table, columns in TABLES.items():
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
            for table in _IDENTITY:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false)"
                    f" FROM {table}"
                )
            copied = {t: _count(cur, t) for t in TABLES}
            expected = {t: len(r) for t, r in rows.items()}
            if copied != expected:
                raise PerceusError(f"copy verification failed: source {expected}, target {copied}; rolled back")
    except psycopg.Error as exc:
        raise PerceusError(f"copying into {where} failed: {str(exc).strip().splitlines()[0]}") from None
    log.info("store_copied", source=str(source), target=where, rows=copied)
    return copied


def _count(cur: psycopg.Cursor[tuple[Any, ...]], table: str) -> int:
    row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
