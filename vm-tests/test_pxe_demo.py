"""Issue 6: nodes PXE-boot with no -kernel shortcut (iPXE ROM → dnsmasq run by perceus-bus → stage one), are
auto-enrolled in boot order, boot their capsule and check in; a pre-added node gets its configured hostname and
static address.  This is the main job (`perceus demo`) with fewer nodes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from perceus.lab.demo import run_demo, summary_table
from perceus.master.config import Paths
from perceus.master.store.sqlite import SQLiteStore

pytestmark = pytest.mark.vm


def test_pxe_nodes_enroll_in_order_boot_their_capsule_and_check_in(
    tmp_path: Path, record_time: Callable[[str, float], None], capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_demo(tmp_path, nodes=3, stagger=3.0, timeout=400, preadd=("gpu42", "10.77.0.42"))
    print(summary_table(result))
    first, second, preadded = result.nodes
    assert (first.hostname, second.hostname, preadded.hostname) == ("n0000", "n0001", "gpu42")
    assert preadded.ip == "10.77.0.42"
    with SQLiteStore(Paths(tmp_path / "etc", tmp_path / "var").database) as store:
        rows = {n.hostname: n for n in store.list_nodes()}
    assert set(rows) == {"n0000", "n0001", "gpu42"}
    assert all(n.status == "ready" and n.phase == "runtime" for n in rows.values()), rows
    leases = (tmp_path / "var" / "dnsmasq" / "leases").read_text()
    assert "10.77.0.42" in leases and preadded.qemu.mac in leases  # the static lease dnsmasq handed out
    for n in result.nodes:
        record_time(f"{n.hostname}: PXE to first check-in", n.times["ready"])
    record_time("3 nodes, wall time", result.wall)
