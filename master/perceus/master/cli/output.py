"""Text renderings shared by node and group verbs (column layouts of Perceus 1.x, 1.x ref §4.4)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from perceus.master.store.models import Node

STATUS_HEADER = "HostName             Status         IP Address             Last Contact"
SUMMARY_HEADER = "HostName             GroupName    Enabled   Vnfs"
RULE = "-" * 79


def since(t: float, now: float | None = None) -> str:
    """Time since `t` as HH:MM:SS (hours may exceed 24), or (undefined)."""
    if not t:
        return "(undefined)"
    delta = max(0, int((now or time.time()) - t))
    return f"{delta // 3600:02d}:{delta % 3600 // 60:02d}:{delta % 60:02d}"


def is_stale(node: Node, timeout: float, now: float | None = None) -> bool:
    """A node that checked in once but not within `timeout` seconds (perceus.conf `node timeout`)."""
    return bool(node.lastcontact) and (now or time.time()) - node.lastcontact > timeout


def status_rows(nodes: Sequence[Node], timeout: float, now: float | None = None) -> list[str]:
    now = now or time.time()
    ordered = sorted(nodes, key=lambda n: (n.group, n.hostname))
    rows = []
    for n in ordered:
        flag = "  STALE" if is_stale(n, timeout, now) else ""
        rows.append(
            f"{n.hostname:<20.20} {n.status or '(undefined)':<14.14} {n.ip or '(undefined)':<22.22} "
            f"{since(n.lastcontact, now):<17.17}{flag}".rstrip()
        )
    return rows


def summary_rows(nodes: Sequence[Node]) -> list[str]:
    return [
        f"{n.hostname:<20.20} {n.group or '(undefined)':<16.16} {'yes' if n.enabled else 'no':<3.3}   "
        f"{n.vnfs or '(undefined)'}".rstrip()
        for n in sorted(nodes, key=lambda n: n.hostname)
    ]


def show_lines(node: Node) -> list[str]:
    """`node show`: nodeid first, then every field alphabetically, as the original's per-table dump."""
    fields: dict[str, str] = {
        "debug": str(node.debug),
        "desc": node.desc,
        "enabled": "1" if node.enabled else "0",
        "group": node.group,
        "hostname": node.hostname,
        "ipaddr": node.ip,
        "lastcontact": f"{node.lastcontact:.0f}" if node.lastcontact else "",
        "macs": ",".join(node.macs),
        "phase": node.phase,
        "status": node.status,
        "vnfs": node.vnfs,
    }
    fields.update(node.attrs)
    lines = [f"{node.hostname}: nodeid={node.nodeid}"]
    lines += [f"{node.hostname}: {key}={fields[key]}" for key in sorted(fields)]
    return lines


def confirm_rows(nodes: Sequence[Node]) -> list[str]:
    rows = [f"{'Hostname':<20} {'Group':<20} NodeID", RULE]
    rows += [f"{n.hostname:<20} {n.group or '(undefined)':<20} {n.nodeid}" for n in nodes]
    return rows
