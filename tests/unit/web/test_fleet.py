"""The fleet snapshot: rows, counts, what changed, the per-phase history, filters, the hardware one-liner."""

from __future__ import annotations

import pytest

from perceus.errors import UsageError
from perceus.master.inventory import Disk, Inventory
from perceus.master.store.models import Node, Pending
from perceus.web.fleet import Filter, Fleet, hardware_line, state_of


def node(i: int, **kw: object) -> Node:
    base: dict[str, object] = {"nodeid": f"52:54:00:00:00:{i:02X}", "hostname": f"n{i:04d}", "group": "cluster"}
    return Node(**{**base, **kw})  # type: ignore[arg-type]


def test_first_snapshot_reports_every_row_then_only_changes() -> None:
    fleet = Fleet(timeout=600)
    nodes = [node(0, status="ready", lastcontact=100.0), node(1)]
    assert len(fleet.take(nodes, [], now=200.0)) == 2
    assert fleet.take(nodes, [], now=201.0) == []
    moved = [node(0, status="ready", lastcontact=150.0), node(1, status="init", phase="capsule")]
    changed = fleet.take(moved, [], now=202.0)
    assert [(r["hostname"], r["state"], r["phase"]) for r in changed] == [("n0001", "init", "capsule")]
    assert fleet.contacts == {"52:54:00:00:00:00": 150.0}  # only checked in: the compact contacts event
    assert fleet.contacts_seen == 1
    gone = fleet.take(moved[:1], [], now=203.0)
    assert gone == [{"nodeid": "52:54:00:00:00:01", "removed": True}]


def test_counts_states_and_pending() -> None:
    fleet = Fleet()
    nodes = [node(0, status="ready"), node(1, enabled=False, status="ready"), node(2, attrs={"revoked": "1"}), node(3)]
    fleet.take(nodes, [Pending("52:54:00:00:00:FF", (), "", 1.0, 1.0)], now=10.0)
    assert fleet.current is not None
    assert fleet.current.counts == {"ready": 1, "disabled": 1, "revoked": 1, "new": 1, "pending": 1}
    assert [state_of(n) for n in nodes] == ["ready", "disabled", "revoked", "new"]


def test_series_is_nodes_per_phase_over_time() -> None:
    fleet = Fleet()
    fleet.take([node(0, phase="dhcp"), node(1, phase="dhcp")], [], now=1.0)
    fleet.take([node(0, phase="capsule"), node(1, phase="dhcp")], [], now=2.0)
    assert fleet.series() == {"t": [1.0, 2.0], "phases": {"capsule": [0, 1], "dhcp": [2, 1]}}
    assert fleet.series(since=1.5)["t"] == [2.0]


def test_filter_by_range_group_and_state() -> None:
    nodes = [node(i, group="gpu" if i % 2 else "cpu", status="ready" if i < 3 else "init") for i in range(6)]
    assert [n.hostname for n in Filter(nodes="n[0001-0003]").apply(nodes)] == ["n0001", "n0002", "n0003"]
    assert [n.hostname for n in Filter(nodes="n000*", group="gpu", state="ready").apply(nodes)] == ["n0001"]
    assert not Filter() and Filter(state="init")
    with pytest.raises(UsageError, match="bad node range"):
        Filter(nodes="n[0001-").apply(nodes)


def test_hardware_line_prefers_the_inventory() -> None:
    inv = Inventory(cpu_model="EPYC 9654", cpu_count=2, memory=768 * 2**30, disks=(Disk("nvme0n1", 10**12),))
    assert hardware_line({"cpu": "old"}, inv) == "2× EPYC 9654 · 768 GiB · 1 disk"
    assert hardware_line({"cpu": "4 cores", "memory": "16 GiB", "rack": "r1"}) == "4 cores · 16 GiB"
    assert hardware_line({}) == ""
