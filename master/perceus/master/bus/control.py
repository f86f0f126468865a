"""The local control channel: `perceus` (CLI) → `perceus-bus` over an ipc:// socket in the state dir.

The CLI writes the store itself (one transaction per command) and then pokes the daemon for what needs it:
"sync now" pushes, dnsmasq host regeneration, stats.  If the daemon is not running the CLI still works.
Access control is the socket file's mode (0600, root), unlike Perceus 1.x's IP-regex control port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import zmq

COMMANDS = (
    "ping", "stats", "sync", "exec", "exec_results", "nodes_changed", "modules_changed", "dnsmasq_restart", "reload",
    "reprovision", "reprovision_status", "reprovision_forget",
)  # fmt: skip


ENDPOINTS_FILE = "bus.endpoint"


def write_endpoints(run_dir: Path, endpoint: str, events: str) -> None:
    """Where a started perceus-bus listens (resolved ports included), for tests, the lab and tools.
    Written atomically, so a reader sees both lines or no file."""
    from perceus.master.fsutil import atomic_write

    atomic_write(run_dir / ENDPOINTS_FILE, f"{endpoint}\n{events}\n".encode())


def read_endpoints(run_dir: Path) -> tuple[str, str] | None:
    """(bus endpoint, event endpoint) of the running perceus-bus, or None before it listens."""
    try:
        endpoint, events = (run_dir / ENDPOINTS_FILE).read_text().split()[:2]
    except (FileNotFoundError, ValueError):
        return None
    return endpoint, events


def control_endpoint(socket_path: Path) -> str:
    return f"ipc://{socket_path}"


def poke(socket_path: Path, cmd: str, *, timeout: float = 2.0, **args: Any) -> dict[str, Any] | None:
    """Send one control command; the daemon's reply map, or None when no daemon answers."""
    if not socket_path.exists():
        return None
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(control_endpoint(socket_path))
        sock.send(msgpack.packb({"cmd": cmd, **args}, use_bin_type=True))
        if not sock.poll(int(timeout * 1000)):
            return None
        reply = msgpack.unpackb(sock.recv(), raw=False)
        return reply if isinstance(reply, dict) else None
    finally:
        sock.close(linger=0)
