"""What `perceus info` shows about the masters sharing the store: heartbeats, liveness, requests served."""

from __future__ import annotations

import time
from typing import Any

from perceus.master.multimaster.identity import LIVE_WITHIN
from perceus.master.store import NodeStore


def masters_section(store: NodeStore, *, shared: bool) -> dict[str, Any]:
    """The `masters` part of `perceus info` (JSON-ready); `shared` when the database is not single-master SQLite."""
    now = time.time()
    rows = store.masters()
    masters = [
        {
            "id": m.id,
            "endpoint": m.endpoint,
            "host": m.host,
            "pid": m.pid,
            "started": m.started,
            "heartbeat": m.heartbeat,
            "heartbeat_age_s": round(max(0.0, now - m.heartbeat), 1),
            "live": now - m.heartbeat <= LIVE_WITHIN,
            "served": m.served,
        }
        for m in rows
    ]
    return {
        "shared": shared,
        "live": sum(1 for m in masters if m["live"]),
        "masters": masters,
        "nodes": len(store.list_nodes()),
    }


def masters_lines(section: dict[str, Any]) -> list[str]:
    """Human lines for the section, in the style of `perceus info`."""
    masters = section["masters"]
    if not masters:
        return ["  masters:           this one (no shared database)"]
    lines = [f"  masters:           {section['live']} live of {len(masters)}, sharing {section['nodes']} nodes"]
    for m in masters:
        state = "live" if m["live"] else "SILENT"
        lines.append(
            f"    {m['endpoint']:<22}{m['host']} pid {m['pid']}, {state}, heartbeat {m['heartbeat_age_s']:.1f}s ago,"
            f" {m['served']} requests served"
        )
    return lines
