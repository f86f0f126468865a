"""BMC addresses from importers: added as IPMI entries, never over an admin's entry, never with a password."""

from __future__ import annotations

from perceus.master.config import Paths
from perceus.master.power.imported import merge_imported
from perceus.master.power.store import BmcStore
from perceus.master.store.models import Node


def test_imported_addresses_fill_gaps_only(paths: Paths) -> None:
    with BmcStore.for_paths(paths).editing() as b:
        b.update("nodes", "bb", {"protocol": "redfish", "host": "own-bmc", "password": "pw"})
        b.update("groups", "cluster", {"password": "grouppw"})
    found = [("aa", "10.1.0.5", "USERID"), ("bb", "10.1.0.6", ""), ("cc", "", ""), ("dd", "bad host!", "")]
    assert merge_imported(paths, found) == 1
    store = BmcStore.for_paths(paths)
    assert store.nodes["aa"] == {"protocol": "ipmi", "host": "10.1.0.5", "user": "USERID"}
    assert store.nodes["bb"]["host"] == "own-bmc"
    rec = store.resolve(Node(nodeid="aa", hostname="n0", group="cluster"))
    assert not isinstance(rec, str) and rec.url == "ipmi://USERID@10.1.0.5:623" and rec.password == "grouppw"
