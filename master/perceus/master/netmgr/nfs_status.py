"""What the CLI shows of perceus-bus's NFS server for hybrid capsules (`perceus info`, `perceus node status`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perceus.master.bus.control import poke


def query(control_socket: Path) -> dict[str, Any] | None:
    """The running bus's `nfs_status` (None without a bus, or a bus without the nfs feature)."""
    try:
        reply = poke(control_socket, "nfs_status", timeout=1.0)
    except Exception:  # noqa: BLE001 - a display aid: any failure to ask is "unknown", never the command's error
        return None
    nfs = reply.get("nfs") if reply and reply.get("ok") else None
    return nfs if isinstance(nfs, dict) else None


def describe(status: dict[str, Any] | None) -> str:
    """One line: `running, pid 7, exports a, b on 10.0.0.1`, `off (no hybrid capsule)` or `FAILED: reason`."""
    if status is None:
        return "unknown (perceus-bus not running)"
    exports = ", ".join(status.get("exports") or []) or "(none)"
    if status.get("state") == "running":
        return f"running, pid {status.get('pid')}, exports {exports} on {status.get('bind')}"
    if status.get("state") == "failed":
        return f"FAILED: {status.get('error')} (exports {exports})"
    return "off (no hybrid capsule)"


def down_capsules(status: dict[str, Any] | None) -> set[str]:
    """Hybrid capsules whose NFS part is not being served right now."""
    if status is None or status.get("state") != "failed":
        return set()
    return set(status.get("exports") or [])
