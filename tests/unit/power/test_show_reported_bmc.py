"""`perceus node show` with the BMC a node reported of itself (stage one reads it through /dev/ipmi0) beside
the configured one, through main(argv): state before (nodes, their inventories, the BMC file) → argv → output.
A runtime OS that cannot read the BMC keeps the address stage one reported."""

from __future__ import annotations

import io
import json

import pytest

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.inventory import Inventory
from perceus.master.store.models import InventoryReport, NewNode
from perceus.master.store.sqlite import SQLiteStore

T = 1_796_000_000.0


def run(paths: Paths, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), context=CliContext(paths=paths, stdin=io.StringIO(), stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fleet(paths: Paths) -> Paths:
    """n0 reported 192.0.2.10 in stage one, then said hello from a runtime OS without /dev/ipmi0; n1 has a
    configured BMC and reported none; n2 has neither."""
    with SQLiteStore(paths.database) as store:
        for i in range(3):
            store.add(NewNode(nodeid=f"52:54:00:00:00:0{i}", hostname=f"n{i}"))
        seen = Inventory(cpu_count=1, bmc="192.0.2.10", bmc_mac="02:00:00:00:19:00", bmc_source="static")
        store.record_inventories([InventoryReport("52:54:00:00:00:00", "stage1", "b1", T, seen)])
        store.record_inventories(
            [InventoryReport("52:54:00:00:00:00", "runtime", "b1", T + 30, Inventory(cpu_count=1))]
        )
        store.record_inventories([InventoryReport("52:54:00:00:00:01", "stage1", "c1", T, Inventory(cpu_count=1))])
    assert run(paths, "-y", "node", "set", "bmc", "ipmi://admin@10.9.0.1", "n1")[0] == 0
    pw = paths.state_dir / "pw"
    pw.write_text("Qz7-not-printed\n")
    assert run(paths, "-y", "node", "set", "bmc-password", f"@{pw}", "n1")[0] == 0
    return paths


def test_show_puts_the_reported_bmc_beside_the_configured_one(fleet: Paths) -> None:
    code, out, err = run(fleet, "node", "show", "n0", "n1", "n2")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "n0: bmc=- (bmc reported: 192.0.2.10)" in lines
    assert "n0: hw.seen=runtime boot b1" in lines  # the newest inventory is the runtime one, without a BMC
    assert "n1: bmc=ipmi://admin@10.9.0.1:623" in lines
    assert not any(line.startswith("n2: bmc=") for line in lines)
    assert "Qz7-not-printed" not in out


def test_show_json_has_both(fleet: Paths) -> None:
    code, out, _ = run(fleet, "--json", "node", "show", "n0", "n1", "n2")
    data = {n["hostname"]: n for n in json.loads(out)}
    assert code == 0
    assert data["n0"]["bmc"] == {
        "url": "",
        "reported": {
            "address": "192.0.2.10",
            "mac": "02:00:00:00:19:00",
            "source": "static",
            "stage": "stage1",
            "t": T,
        },
    }
    assert data["n0"]["inventory"]["bmc_reported"]["address"] == "192.0.2.10"
    assert data["n1"]["bmc"] == {"url": "ipmi://admin@10.9.0.1:623", "reported": None}
    assert data["n2"]["bmc"] == {"url": "", "reported": None} and data["n2"]["inventory"] is None


def test_a_newer_report_replaces_the_older(fleet: Paths) -> None:
    with SQLiteStore(fleet.database) as store:
        moved = Inventory(cpu_count=1, bmc="192.0.2.99")
        store.record_inventories([InventoryReport("52:54:00:00:00:00", "stage1", "b2", T + 60, moved)])
    assert "n0: bmc=- (bmc reported: 192.0.2.99)" in run(fleet, "node", "show", "n0")[1].splitlines()


def test_set_bmc_reported_adopts_the_address_only_when_asked(fleet: Paths) -> None:
    code, out, err = run(fleet, "-y", "node", "set", "bmc", "reported", "n0")
    assert code == 0, err
    assert "n0" in out + err
    (entry,) = json.loads(run(fleet, "--json", "node", "bmc", "n0")[1])
    assert (entry["protocol"], entry["host"]) == ("ipmi", "192.0.2.10")
    code, out, err = run(fleet, "-y", "node", "set", "bmc", "reported", "n0", "n2")  # n2 reported nothing
    assert code == 2 and out == "" and err == "perceus: error: no BMC address reported by n2\n"
    (entry,) = json.loads(run(fleet, "--json", "node", "bmc", "n1")[1])
    assert entry["host"] == "10.9.0.1"  # untouched: nothing is adopted without the admin's command
