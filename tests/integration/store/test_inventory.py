"""Hardware inventory in the store, on every backend: kept per node and stage, changes between boots held
while they are true, carried by `node replace`, gone with the node."""

from __future__ import annotations

from perceus.master.inventory import Disk, Inventory, Nic
from perceus.master.store import NodeStore
from perceus.master.store.models import InventoryReport, NewNode

GIB = 1 << 30
BASE = Inventory(
    cpu_model="QEMU Virtual CPU",
    cpu_count=2,
    memory=4 * GIB,
    disks=(Disk("sda", 20 * GIB, "QEMU HARDDISK"), Disk("sdb", 100 * GIB, "QEMU HARDDISK")),
    nics=(Nic("eth0", "52:54:00:00:00:01", "virtio_net", 1000, True),),
    vendor="QEMU",
    product="Standard PC",
    serial="S1",
)
WITHOUT_SDB = Inventory(**{**BASE.__dict__, "disks": BASE.disks[:1]})


def report(
    inv: Inventory, t: float, *, boot: str, stage: str = "stage1", nodeid: str = "52:54:00:00:00:01"
) -> InventoryReport:
    return InventoryReport(nodeid=nodeid, stage=stage, boot_id=boot, t=t, inventory=inv)


def test_first_inventory_is_kept_and_changes_nothing(store: NodeStore) -> None:
    store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000"))
    assert store.record_inventories([report(BASE, 100.0, boot="b1")]) == []
    kept = store.inventories()["52:54:00:00:00:01"]
    assert kept.inventory == BASE and kept.stage == "stage1" and kept.boot_id == "b1" and kept.t == 100.0
    assert kept.changes == ()
    assert store.inventories(["52:54:00:00:00:99"]) == {}


def test_a_missing_disk_is_one_change_held_until_it_returns(store: NodeStore) -> None:
    store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000"))
    store.record_inventories([report(BASE, 100.0, boot="b1")])
    fresh = store.record_inventories([report(WITHOUT_SDB, 200.0, boot="b2")])
    assert [(r.boot_id, c.item, c.kind, c.since, c.was) for r, c in fresh] == [
        ("b2", "disk sdb", "missing", 200.0, "100 GiB QEMU HARDDISK")
    ]
    # The next boot without it reports nothing new, and the change keeps its first time.
    assert store.record_inventories([report(WITHOUT_SDB, 300.0, boot="b3")]) == []
    (held,) = store.inventories()["52:54:00:00:00:01"].changes
    assert held.item == "disk sdb" and held.since == 200.0 and held.describe().startswith("disk sdb missing since ")
    assert store.record_inventories([report(BASE, 400.0, boot="b4")]) == []
    assert store.inventories()["52:54:00:00:00:01"].changes == ()


def test_stages_are_compared_with_themselves(store: NodeStore) -> None:
    """Stage one may lack a driver the runtime kernel has: a disk only the runtime sees is no change."""
    store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000"))
    store.record_inventories([report(WITHOUT_SDB, 100.0, boot="b1")])
    assert store.record_inventories([report(BASE, 110.0, boot="b1", stage="runtime")]) == []
    newest = store.inventories()["52:54:00:00:00:01"]
    assert newest.stage == "runtime" and newest.inventory == BASE  # the newest of either stage is shown
    assert store.record_inventories([report(WITHOUT_SDB, 200.0, boot="b2")]) == []
    fresh = store.record_inventories([report(Inventory(**{**BASE.__dict__, "memory": 2 * GIB}), 210.0, boot="b2",
                                             stage="runtime")])  # fmt: skip
    assert [(c.item, c.kind, c.was, c.now) for _, c in fresh] == [("memory", "changed", "4 GiB", "2 GiB")]


def test_unknown_nodes_are_dropped_and_replace_and_delete_carry_the_inventory(store: NodeStore) -> None:
    store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000"))
    store.add(NewNode(nodeid="52:54:00:00:00:02", hostname="spare"))
    spare = Inventory(**{**BASE.__dict__, "serial": "S2"})
    store.record_inventories([
        report(BASE, 100.0, boot="b1"),
        report(WITHOUT_SDB, 110.0, boot="b2"),
        report(spare, 120.0, boot="c1", nodeid="52:54:00:00:00:02"),
        report(BASE, 130.0, boot="x", nodeid="52:54:00:00:00:77"),  # not a node: dropped
    ])  # fmt: skip
    assert set(store.inventories()) == {"52:54:00:00:00:01", "52:54:00:00:00:02"}
    store.replace("n0000", "spare")  # the spare's hardware (and its inventory) becomes n0000
    after = store.inventories()
    assert list(after) == ["52:54:00:00:00:02"]
    assert after["52:54:00:00:00:02"].inventory.serial == "S2" and after["52:54:00:00:00:02"].changes == ()
    store.delete(["52:54:00:00:00:02"])
    assert store.inventories() == {}
