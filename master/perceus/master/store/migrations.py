"""Schema migrations, in order; each entry brings the schema to `version`.  Portable SQL where possible so
the PostgreSQL backend can share the list."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE node (
                id INTEGER PRIMARY KEY,
                nodeid TEXT NOT NULL UNIQUE,
                hostname TEXT NOT NULL UNIQUE,
                grp TEXT NOT NULL DEFAULT '',
                vnfs TEXT NOT NULL DEFAULT '',
                enabled INTEGER NOT NULL DEFAULT 1,
                debug INTEGER NOT NULL DEFAULT 0,
                descr TEXT NOT NULL DEFAULT '',
                ip TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL DEFAULT '',
                lastcontact REAL NOT NULL DEFAULT 0,
                boot_id TEXT NOT NULL DEFAULT '',
                phase TEXT NOT NULL DEFAULT '',
                created REAL NOT NULL,
                updated REAL NOT NULL)""",
            "CREATE INDEX node_grp ON node (grp)",
            "CREATE INDEX node_vnfs ON node (vnfs)",
            """CREATE TABLE node_mac (
                mac TEXT PRIMARY KEY,
                node_id INTEGER NOT NULL REFERENCES node (id) ON DELETE CASCADE)""",
            "CREATE INDEX node_mac_node ON node_mac (node_id)",
            """CREATE TABLE node_attr (
                node_id INTEGER NOT NULL REFERENCES node (id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (node_id, key))""",
            """CREATE TABLE pending (
                nodeid TEXT PRIMARY KEY,
                macs TEXT NOT NULL DEFAULT '',
                ip TEXT NOT NULL DEFAULT '',
                first_seen REAL NOT NULL,
                last_seen REAL NOT NULL,
                nodename TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE event (
                id INTEGER PRIMARY KEY,
                nodeid TEXT NOT NULL,
                boot_id TEXT NOT NULL,
                phase TEXT NOT NULL,
                t REAL NOT NULL,
                ok INTEGER NOT NULL,
                done INTEGER NOT NULL,
                detail TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX event_node ON event (nodeid, id)",
        ],
    ),
]
