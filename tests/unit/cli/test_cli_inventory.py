"""CLI table tests for the hardware inventory through `perceus …` main(argv): state before (nodes and the
inventories their hellos left) → argv → exit code, stdout, stderr."""

from __future__ import annotations

import io
import json
import time

import pytest

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.inventory import Disk, Inventory, Nic
from perceus.master.store.models import InventoryReport, NewNode
from perceus.master.store.sqlite import SQLiteStore

GIB = 1 << 30
BIG = Inventory(
    cpu_model="AMD EPYC 7302",
    cpu_count=32,
    memory=256 * GIB,
    disks=(Disk("sda", 480 * GIB, "MZ7LH480"), Disk("sdb", 4096 * GIB, "ST4000NM")),
    nics=(Nic("eno1", "52:54:00:00:00:01", "tg3", 1000, True),),
    vendor="Dell Inc.",
    product="PowerEdge R6525",
    serial="ABC1234",
    bmc="10.1.0.17",
)
SMALL = Inventory(cpu_model="QEMU Virtual CPU", cpu_count=2, memory=2 * GIB, disks=(Disk("vda", GIB),),
                  nics=(Nic("ens3", "52:54:00:00:00:02", "virtio_net"),), vendor="QEMU")  # fmt: skip
T1 = time.mktime((2026, 12, 4, 10, 30, 0, 0, 0, -1))


def run(paths: Paths, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), context=CliContext(paths=paths, stdin=io.StringIO(), stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fleet(paths: Paths) -> Paths:
    """n0000 (big, lost sdb on its second boot), n0001 and n0002 (small), n0003 (never said hello)."""
    with SQLiteStore(paths.database) as store:
        for i, name in enumerate(("n0000", "n0001", "n0002", "n0003"), start=1):
            store.add(NewNode(nodeid=f"52:54:00:00:00:0{i}", hostname=name))

        def hello(i: int, inv: Inventory, boot: str, t: float) -> InventoryReport:
            return InventoryReport(f"52:54:00:00:00:0{i}", "runtime", boot, t, inv)

        store.record_inventories([hello(1, BIG, "a1", T1 - 3600), hello(2, SMALL, "b1", T1), hello(3, SMALL, "c1", T1)])
        store.record_inventories([hello(1, Inventory(**{**BIG.__dict__, "disks": BIG.disks[:1]}), "a2", T1)])
    return paths


def test_show_lists_the_hardware_and_what_went_missing(fleet: Paths) -> None:
    code, out, err = run(fleet, "node", "show", "n0000")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "n0000: nodeid=52:54:00:00:00:01"
    for line in (
        "n0000: hw.cpu=32 × AMD EPYC 7302",
        "n0000: hw.memory=256 GiB",
        "n0000: hw.disk.sda=480 GiB MZ7LH480",
        "n0000: hw.nic.eno1=52:54:00:00:00:01 tg3 1000 Mb/s link up",
        "n0000: hw.vendor=Dell Inc.",
        "n0000: hw.product=PowerEdge R6525",
        "n0000: hw.serial=ABC1234",
        "n0000: hw.bmc=10.1.0.17",
        "n0000: hw.seen=runtime boot a2",
        "n0000: hw.change=disk sdb missing since 2026-12-04 10:30 (was 4 TiB ST4000NM)",
    ):
        assert line in lines
    assert not any("hw.disk.sdb" in line for line in lines)
    code, out, _ = run(fleet, "node", "show", "n0003")  # no hello yet: the node's own lines only
    assert code == 0 and "hw." not in out and out.startswith("n0003: nodeid=")


def test_show_json_carries_the_inventory(fleet: Paths) -> None:
    code, out, _ = run(fleet, "--json", "node", "show", "n0000", "n0003")
    data = {n["hostname"]: n for n in json.loads(out)}
    assert code == 0 and data["n0003"]["inventory"] is None
    inv = data["n0000"]["inventory"]
    assert inv["cpu"] == {"model": "AMD EPYC 7302", "count": 32} and inv["memory"] == 256 * GIB
    assert inv["disks"] == [{"name": "sda", "size": 480 * GIB, "model": "MZ7LH480"}]
    assert inv["nics"] == [{"name": "eno1", "mac": "52:54:00:00:00:01", "driver": "tg3", "speed": 1000, "link": True}]
    assert inv["dmi"] == {"vendor": "Dell Inc.", "product": "PowerEdge R6525", "serial": "ABC1234"}
    assert inv["bmc"] == "10.1.0.17" and inv["stage"] == "runtime" and inv["boot_id"] == "a2"
    (change,) = inv["changes"]
    assert change["item"] == "disk sdb" and change["kind"] == "missing" and change["since"] == T1
    assert change["text"].startswith("disk sdb missing since ")


def test_list_columns(fleet: Paths) -> None:
    code, out, err = run(fleet, "node", "list", "--columns", "cpu,cpus,memory,disks,bmc")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "HostName CPU              CPUs Memory  Disks       BMC",
        "------------------------------------------------------",
        "n0000    AMD EPYC 7302    32   256 GiB 1 (480 GiB) 10.1.0.17",
        "n0001    QEMU Virtual CPU 2    2 GiB   1 (1 GiB)   -",
        "n0002    QEMU Virtual CPU 2    2 GiB   1 (1 GiB)   -",
        "n0003    -                -    -       -           -",
    ]
    code, out, _ = run(fleet, "-q", "node", "list", "n000[1-2]", "--columns", "memory,vendor")  # -q: no header
    assert out.splitlines() == ["n0001    2 GiB  QEMU", "n0002    2 GiB  QEMU"]
    code, out, _ = run(fleet, "--json", "node", "list", "n0001", "--columns", "nics,changes")
    assert json.loads(out) == [{"hostname": "n0001", "nics": "ens3:virtio_net", "changes": "0"}]


def test_summary_by_memory(fleet: Paths) -> None:
    code, out, err = run(fleet, "node", "summary", "--by", "memory")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "Memory    Count  Nodes"
    assert out.splitlines()[2:] == [
        "2 GiB         2  n[0001-0002]",
        "(unknown)     1  n0003",
        "256 GiB       1  n0000",
    ]
    code, out, _ = run(fleet, "--json", "node", "summary", "--by", "vendor")
    assert json.loads(out) == [
        {"vendor": "QEMU", "count": 2, "nodes": ["n0001", "n0002"]},
        {"vendor": "(unknown)", "count": 1, "nodes": ["n0003"]},
        {"vendor": "Dell Inc.", "count": 1, "nodes": ["n0000"]},
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["node", "list", "--columns", "cpu,flux"], "perceus: error: unknown column 'flux' (columns: hostname,"),
        (["node", "summary", "--by", "memory,cpu"], "perceus: error: --by takes one column, not 'memory,cpu'"),
        (["node", "summary", "--by", "ram"], "perceus: error: unknown column 'ram'"),
    ],
)
def test_bad_columns_are_usage_errors(fleet: Paths, argv: list[str], message: str) -> None:
    code, out, err = run(fleet, *argv)
    assert (code, out) == (2, "") and err.startswith(message) and len(err.splitlines()) == 1
