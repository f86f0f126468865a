"""BMC addresses found by `perceus import` (CSM HWControlPoint, xCAT `bmc`, Warewulf `ipmi ipaddr` …) into the
BMC file: as IPMI entries (what those sources describe), only for nodes without an entry of their own, never
with a password (no source gives one here; set it with `node set bmc-password` or a group default)."""

from __future__ import annotations

from collections.abc import Iterable

from perceus.master.config import Paths
from perceus.master.power.records import valid_host
from perceus.master.power.store import BmcStore


def merge_imported(paths: Paths, found: Iterable[tuple[str, str, str]]) -> int:
    """`found` is (nodeid, address, username) per node; returns how many nodes got an entry."""
    added = 0
    with BmcStore.for_paths(paths).editing() as bmcs:
        for nodeid, address, username in found:
            host = address.strip()
            if not host or not valid_host(host) or bmcs.nodes.get(nodeid, {}).get("host"):
                continue  # nothing usable, or the admin already said where this node's BMC is
            fields: dict[str, object] = {"protocol": "ipmi", "host": host}
            if username.strip():
                fields["user"] = username.strip()
            bmcs.update("nodes", nodeid, fields)
            added += 1
    return added
