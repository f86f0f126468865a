"""Who this master is in the shared `master` table: a stable id and the address nodes should use."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from perceus.master.fsutil import atomic_write

ID_FILE = "master.id"
# A master whose heartbeat is older than this is not advertised to nodes (and shows as silent in `info`).
LIVE_WITHIN = 10.0
_ANY = ("0.0.0.0", "*", "::", "[::]", "")  # noqa: S104 - the any-address: 1.x's documented default, or a value compared


def master_id(state_dir: Path) -> str:
    """A UUID kept in `<state>/master.id`, so a restarted master keeps its row (its port may change).

    Not derived from host + port: tests and containers bind ephemeral ports, and two masters on one host are
    legitimate.  Admins sharing capsules over NFS share `<state>/vnfs` and `<state>/chunks` only, never the
    whole state dir, so the id stays per master (docs/multi-master.md).
    """
    path = state_dir / ID_FILE
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    new = str(uuid.uuid4())
    atomic_write(path, (new + "\n").encode())
    return new


def advertised(endpoint: str, fallback_host: str) -> str:
    """`host:port` nodes can reach from a bound ZeroMQ endpoint (a wildcard bind advertises `fallback_host`)."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if host in _ANY:
        host = fallback_host or socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host
