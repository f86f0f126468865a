"""Hardware inventory: the wire form checked field by field, changes between boots, and the hello handler
storing it (real SQLite store in tmp_path) with a changed boot as a timeline event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from perceus.agent import bmc_self
from perceus.agent import inventory as agent_inventory
from perceus.master.bus.handlers import Dispatcher, Incoming
from perceus.master.config import Paths
from perceus.master.inventory import Change, Disk, Inventory, Nic, compare, human_bytes
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello

GIB = 1 << 30
WIRE: dict[str, Any] = {
    "cpu": {"model": "AMD EPYC 7302", "count": 32},
    "memory": 256 * GIB,
    "nics": [{"name": "eno1", "mac": "b8:ca:3a:00:00:01", "driver": "tg3", "link": True, "speed": 1000}],
    "disks": [{"name": "sda", "size": 480 * 10**9, "model": "MZ7LH480"}, {"name": "sdb", "size": 4 * 10**12}],
    "dmi": {"vendor": "Dell Inc.", "product": "PowerEdge R6525", "serial": "ABC1234"},
    "bmc": {"address": "10.1.0.17"},
    "kernel": "6.1.0-27-amd64",
}


def test_from_wire_reads_what_the_agent_sends() -> None:
    inv = Inventory.from_wire(WIRE)
    assert (inv.cpu_model, inv.cpu_count, inv.memory) == ("AMD EPYC 7302", 32, 256 * GIB)
    assert inv.nics == (Nic("eno1", "B8:CA:3A:00:00:01", "tg3", 1000, True),)
    assert inv.disks == (Disk("sda", 480 * 10**9, "MZ7LH480"), Disk("sdb", 4 * 10**12, ""))
    assert (inv.vendor, inv.product, inv.serial, inv.bmc) == ("Dell Inc.", "PowerEdge R6525", "ABC1234", "10.1.0.17")
    assert Inventory.from_json(inv.to_json()) == inv
    assert inv.as_dict()["dmi"] == WIRE["dmi"] and inv.as_dict()["cpu"] == WIRE["cpu"]


def test_from_wire_accepts_the_agents_own_collection(tmp_path: Path) -> None:
    """What perceus.agent.inventory.collect() builds from a /proc and /sys tree is what the master reads."""
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    proc.mkdir()
    (proc / "cpuinfo").write_text("processor\t: 0\nmodel name\t: QEMU Virtual CPU version 2.5+\n")
    (proc / "meminfo").write_text("MemTotal:        2030000 kB\n")
    nic = sys / "class/net/ens3"
    (nic / "device").mkdir(parents=True)
    (nic / "type").write_text("1\n")
    (nic / "address").write_text("52:54:00:12:34:56\n")
    (nic / "carrier").write_text("1\n")
    (nic / "speed").write_text("-1\n")
    (sys / "block/vda").mkdir(parents=True)
    (sys / "block/vda/size").write_text("2097152\n")
    inv = Inventory.from_wire(agent_inventory.collect(proc=proc, sys=sys, ipmi=()))
    assert inv.cpu_model == "QEMU Virtual CPU version 2.5+" and inv.memory == 2030000 * 1024
    assert inv.nics == (Nic("ens3", "52:54:00:12:34:56", "", 0, True),)
    assert inv.disks == (Disk("vda", 1 * GIB, ""),) and inv.bmc == ""
    # What perceus.agent.bmc_self.read() sends for a BMC at 10.1.0.17 (parameter 3 answered as the spec lays it out)
    address = bmc_self.ip_text(bmc_self.lan_parameter(bytes([0, 0x11, 10, 1, 0, 17]), 4))
    wire = {"address": address, "mac": "d0:94:66:aa:bb:cc", "source": "dhcp", "channel": "1"}
    got = Inventory.from_wire({"bmc": wire})
    assert (got.bmc, got.bmc_mac, got.bmc_source) == ("10.1.0.17", "D0:94:66:AA:BB:CC", "dhcp")
    assert Inventory.from_wire({"bmc": {"address": 17, "mac": None}}).bmc == ""  # the node is not trusted


@pytest.mark.parametrize(
    "wire",
    [
        {"cpu": "x", "memory": "lots", "nics": {"a": 1}, "disks": [1, "sda", None], "dmi": [], "bmc": 7},
        {"cpu": {"count": True, "model": 5}, "memory": -4, "nics": [{"mac": 5}], "disks": [{"size": 1}]},
        {"memory": 1 << 70, "dmi": {"vendor": "x" * 10_000}, "disks": [{"name": f"d{i}"} for i in range(1000)]},
    ],
)
def test_from_wire_never_trusts_the_node(wire: dict[str, Any]) -> None:
    inv = Inventory.from_wire(wire)
    assert inv.cpu_count == 0 and inv.cpu_model == "" and inv.nics == () and inv.memory == 0
    assert len(inv.vendor) <= 256 and len(inv.disks) <= 128


def test_compare_reports_missing_added_changed_and_ignores_link_and_small_memory_drift() -> None:
    old = Inventory.from_wire(WIRE)
    assert compare(None, old, {}, 1.0) == []
    flapped = Inventory.from_wire({**WIRE, "nics": [{**WIRE["nics"][0], "link": False, "speed": 0}],
                                   "memory": 250 * GIB})  # fmt: skip
    assert compare(old, flapped, {}, 2.0) == []
    new = Inventory.from_wire(
        {**WIRE, "disks": WIRE["disks"][:1], "memory": 128 * GIB,
         "nics": [*WIRE["nics"], {"name": "ib0", "mac": "80:00:00:48:fe:80", "driver": "mlx5_core"}]}
    )  # fmt: skip
    changes = compare(old, new, {}, 3.0)
    assert [(c.item, c.kind, c.was, c.now) for c in changes] == [
        ("disk sdb", "missing", "3.6 TiB", ""),
        ("memory", "changed", "256 GiB", "128 GiB"),
        ("nic 80:00:00:48:FE:80", "added", "", "mlx5_core"),
    ]
    held = {c.item: c for c in changes}
    assert compare(new, new, held, 4.0) == changes  # still true: kept with their first time
    # Back to the old hardware: sdb returned (no longer listed), memory changed again, the extra NIC is gone.
    assert compare(new, old, held, 5.0) == [
        Change("memory", "changed", 5.0, was="128 GiB", now="256 GiB"),
        Change("nic 80:00:00:48:FE:80", "missing", 5.0, was="mlx5_core"),
    ]
    assert changes[0].describe().startswith("disk sdb missing since ") and "(was 3.6 TiB)" in changes[0].describe()


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 3 << 20, 1536 << 20, 20 * GIB, 4 * 10**12)] == [
        "512 B", "3 MiB", "1.5 GiB", "20 GiB", "3.6 TiB"
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------- the hello handler
class NoCapsules:
    def manifest_hash(self, name: str) -> str | None:
        return None


@pytest.fixture
def store(paths: Paths) -> Iterator[SQLiteStore]:
    s = SQLiteStore(paths.database)
    yield s
    s.close()


def hello(boot: str, inventory: dict[str, Any], stage: Stage = Stage.STAGE1) -> Incoming:
    msg = Hello(rid=1, macs=("B8:CA:3A:00:00:01",), state="init", stage=stage, boot_id=boot, inventory=inventory)
    return Incoming(b"id1", msg, "10.0.0.9")


def test_hello_stores_the_inventory_and_a_changed_boot_is_an_event(store: SQLiteStore, paths: Paths) -> None:
    now = [1000.0]
    dispatcher = Dispatcher(
        store=store, paths=paths, publish=lambda m: None, capsules=NoCapsules(), clock=lambda: now[0]
    )
    store.add(NewNode(nodeid="B8:CA:3A:00:00:01", hostname="c1"))
    dispatcher.handle_batch([hello("b1", WIRE)])
    assert dispatcher.pending_writes() >= 1
    dispatcher.flush()
    kept = store.inventories()["B8:CA:3A:00:00:01"]
    assert kept.inventory == Inventory.from_wire(WIRE) and kept.boot_id == "b1" and kept.t == 1000.0
    now[0] = 2000.0
    with capture_logs() as logs:
        dispatcher.handle_batch([hello("b2", {**WIRE, "disks": WIRE["disks"][:1]})])
        dispatcher.flush()
    assert [(e["event"], e["item"], e["kind"]) for e in logs if e["event"] == "inventory_changed"] == [
        ("inventory_changed", "disk sdb", "missing")
    ]
    (event,) = [e for e in store.events("B8:CA:3A:00:00:01", "b2") if e.phase == "inventory"]
    assert not event.ok and event.t == 2000.0 and event.detail.startswith("disk sdb missing since ")
    dispatcher.handle_batch([hello("b2", {})])  # a hello without inventory keeps what is known
    dispatcher.flush()
    assert store.inventories()["B8:CA:3A:00:00:01"].inventory == Inventory.from_wire(
        {**WIRE, "disks": WIRE["disks"][:1]}
    )
