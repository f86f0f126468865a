"""`perceus node status` names why a node failed (issue 22: a refused stateful install), from its boot timeline."""

from __future__ import annotations

from tests.unit.cli.clirun import run

from perceus.master.config import Paths
from perceus.master.store.models import ContactUpdate, NewNode, PhaseEvent
from perceus.master.store.sqlite import SQLiteStore

REASON = "TARGETS disk /dev/vdb is not present (disks found: vda)"


def test_status_shows_the_reason_of_a_failed_phase_and_nothing_for_healthy_nodes(paths: Paths) -> None:
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000", group="cluster"))
        store.add(NewNode(nodeid="52:54:00:00:00:02", hostname="n0001", group="cluster"))
        store.record_events([
            PhaseEvent("52:54:00:00:00:01", "b1", "capsule", 10.0, ok=True, done=False),
            PhaseEvent("52:54:00:00:00:01", "b1", "capsule", 11.0, ok=False, done=True, detail=REASON),
            PhaseEvent("52:54:00:00:00:01", "b1", "failed", 11.1, ok=True, done=False),
            PhaseEvent("52:54:00:00:00:02", "b2", "capsule", 10.0, ok=True, done=True),
        ])  # fmt: skip
        store.record_contacts([
            ContactUpdate("52:54:00:00:00:01", "init", "10.0.0.5", 11.1, "b1", "failed"),
            ContactUpdate("52:54:00:00:00:02", "ready", "10.0.0.6", 11.1, "b2", "runtime"),
        ])  # fmt: skip
    r = run(paths, "-q", "node", "status")
    assert r.code == 0, r.err
    lines = {line.split()[0]: line for line in r.out.splitlines()}
    assert lines["n0000"].endswith(f"  FAILED: {REASON}")
    assert "FAILED" not in lines["n0001"]
