"""The NodeStore contract: every backend (SQLite, PostgreSQL) must pass this same suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.integration.store.backends import Backend

from perceus.errors import AlreadyExistsError, ConflictError, NotFoundError, PerceusError
from perceus.master.config import NodeDefaults
from perceus.master.store import NodeStore
from perceus.master.store.base import EVENTS_PER_NODE, SCHEMA_VERSION
from perceus.master.store.models import (
    Activation,
    ContactUpdate,
    EnrollRequest,
    MasterInfo,
    NewNode,
    PhaseEvent,
)

DEFAULTS = NodeDefaults(
    prefix="n",
    width=4,
    suffix="",
    group="cluster",
    vnfs="centos",
    enabled=True,
    first=0,
    total=10000,
    debug=1,
)
WORKER = Path(__file__).with_name("enroll_worker.py")


def mac(i: int, prefix: int = 0) -> str:
    return f"52:54:{prefix:02x}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


def snapshot(store: NodeStore) -> list[dict[str, object]]:
    """Everything a failed write must leave untouched."""
    return [n.as_dict() for n in store.list_nodes()]


# ---------------------------------------------------------------------- add and reads
def test_add_then_read_back_by_every_key(store: NodeStore) -> None:
    added = store.add(
        NewNode(
            nodeid=mac(1),
            hostname="web1",
            group="web",
            vnfs="deb12",
            ip="10.0.0.5",
            debug=2,
            desc="rack 4",
            macs=(mac(1, 9),),
            attrs={"rack": "4", "slot": "12"},
        )
    )
    store.add(NewNode(nodeid=mac(2), hostname="db1", group="db", enabled=False))
    assert added.hostname == "web1" and added.group == "web" and added.vnfs == "deb12"
    assert added.ip == "10.0.0.5" and added.debug == 2 and added.desc == "rack 4" and added.enabled
    assert set(added.macs) == {mac(1), mac(1, 9)}
    assert dict(added.attrs) == {"rack": "4", "slot": "12"}
    assert added.created > 0 and added.status == "" and added.lastcontact == 0
    assert store.get(mac(1)) == added
    assert store.get(mac(1, 9)) == added  # an extra MAC finds the node too
    assert store.get_by_hostname("web1") == added
    assert store.find_by_macs(["00:00:00:00:00:01", mac(1, 9)]) == added
    assert store.find_by_macs([]) is None
    assert store.get(mac(3)) is None and store.get_by_hostname("nope") is None
    assert [n.hostname for n in store.list_nodes()] == ["db1", "web1"]
    assert store.get_by_hostname("db1").enabled is False  # type: ignore[union-attr]
    assert store.count_by_status() == {"": 2}
    assert store.groups() == ["db", "web"]


def test_empty_store_reads(store: NodeStore) -> None:
    assert store.list_nodes() == []
    assert store.count_by_status() == {}
    assert store.groups() == []
    assert store.pending() == []
    assert store.events(mac(1)) == []


@pytest.mark.parametrize(
    ("node", "kind"),
    [
        (NewNode(nodeid=mac(1), hostname="other"), "NodeID"),  # primary MAC taken
        (NewNode(nodeid=mac(5), hostname="other", macs=(mac(1, 9),)), "NodeID"),  # extra MAC taken
        (NewNode(nodeid=mac(5), hostname="n1", macs=(mac(5, 9),)), "hostname"),
    ],
)
def test_duplicate_add_writes_nothing(store: NodeStore, node: NewNode, kind: str) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="n1", macs=(mac(1, 9),)))
    before = snapshot(store)
    with pytest.raises(AlreadyExistsError) as err:
        store.add(node)
    assert err.value.kind == kind
    assert snapshot(store) == before
    assert store.get(mac(5)) is None and store.get(mac(5, 9)) is None  # no orphan MAC rows


# ---------------------------------------------------------------------- naming
def test_add_auto_takes_lowest_free_name_and_refills_gaps(store: NodeStore) -> None:
    names = [store.add_auto(mac(i), DEFAULTS).hostname for i in range(4)]
    assert names == ["n0000", "n0001", "n0002", "n0003"]
    node = store.get(mac(0))
    assert node is not None and node.group == "cluster" and node.vnfs == "centos" and node.debug == 1
    store.delete([mac(1)])
    assert store.add_auto(mac(10), DEFAULTS).hostname == "n0001"
    assert store.add_auto(mac(11), DEFAULTS).hostname == "n0004"
    assert store.add_auto(mac(12), DEFAULTS, nodename="special").hostname == "special"


def test_add_auto_ignores_names_outside_the_pattern_and_errors_when_full(store: NodeStore) -> None:
    small = NodeDefaults(prefix="c", width=1, suffix="-x", group="", vnfs="", enabled=False, first=1, total=2, debug=0)
    store.add(NewNode(nodeid=mac(100), hostname="c1"))  # no suffix: not a pattern name
    assert store.add_auto(mac(1), small).hostname == "c1-x"
    assert store.add_auto(mac(2), small).hostname == "c2-x"
    before = snapshot(store)
    with pytest.raises(ConflictError, match="no free node name"):
        store.add_auto(mac(3), small)
    assert snapshot(store) == before


# ---------------------------------------------------------------------- enrollment
def test_enroll_names_in_request_order_and_is_idempotent(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(50), hostname="n0001"))
    requests = [EnrollRequest(nodeid=mac(i), macs=(mac(i), mac(i, 7))) for i in range(3)]
    store.note_pending(requests[1], "10.0.0.9", 5.0)
    nodes = store.enroll(requests, DEFAULTS)
    assert [n.hostname for n in nodes] == ["n0000", "n0002", "n0003"]
    assert [n.nodeid for n in nodes] == [mac(0), mac(1), mac(2)]
    assert store.get(mac(2, 7)) == nodes[2]
    assert store.pending() == []  # enrolled nodes leave the pending list
    again = store.enroll(list(reversed(requests)), DEFAULTS)
    assert [n.hostname for n in again] == ["n0003", "n0002", "n0000"]
    assert len(store.list_nodes()) == 4
    # Known by an extra MAC only: still the same node, no new one.
    assert store.enroll([EnrollRequest(nodeid=mac(99), macs=(mac(0, 7),))], DEFAULTS)[0].hostname == "n0000"
    assert store.get(mac(99)) is None


def test_enroll_batch_duplicates_and_name_wishes(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(50), hostname="taken"))
    nodes = store.enroll(
        [
            EnrollRequest(nodeid=mac(1), nodename="wish"),
            EnrollRequest(nodeid=mac(2), nodename="taken"),  # wish clashes: gets a pattern name
            EnrollRequest(nodeid=mac(1)),  # same node twice in one batch
            EnrollRequest(nodeid=mac(3)),
        ],
        DEFAULTS,
    )
    assert [n.hostname for n in nodes] == ["wish", "n0000", "wish", "n0001"]
    assert len(store.list_nodes()) == 4
    assert store.enroll([], DEFAULTS) == []


def _run_workers(backend: Backend, processes: int, threads: int, per_thread: int) -> list[dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    start_at = time.time() + 2.0  # every process and thread starts enrolling at the same instant
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                backend.kind,
                backend.target,
                str(p),
                str(threads),
                str(per_thread),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in range(processes)
    ]
    results: list[dict[str, str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_enrollment_race_200_unknown_nodes_get_200_distinct_names(backend: Backend) -> None:
    with backend.open():
        pass  # migrate once up front so the workers race on enrollment, not on schema creation
    results = _run_workers(backend, processes=4, threads=5, per_thread=10)
    assigned: dict[str, str] = {}
    for part in results:
        assigned.update(part)
    assert len(assigned) == 200
    assert len(set(assigned.values())) == 200
    with backend.open() as store:
        nodes = store.list_nodes()
    assert len(nodes) == 200
    # Lowest free names first: exactly n0000 … n0199, no gaps, no duplicates.
    assert sorted(n.hostname for n in nodes) == [f"n{i:04d}" for i in range(200)]
    assert {n.nodeid: n.hostname for n in nodes} == assigned


# ---------------------------------------------------------------------- update
def test_update_columns_and_attrs(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a", attrs={"rack": "1"}))
    store.add(NewNode(nodeid=mac(2), hostname="b"))
    changed = store.update(
        [mac(1), mac(2)],
        {
            "group": "gpu",
            "vnfs": "rocky9",
            "enabled": False,
            "debug": 3,
            "desc": "new",
            "ip": "10.1.1.1",
            "status": "ready",
            "lastcontact": 1234.5,
            "attrs.rack": "7",
        },
    )
    assert changed == 2
    a = store.get(mac(1))
    assert a is not None
    assert (a.group, a.vnfs, a.enabled, a.debug, a.desc, a.ip, a.status, a.lastcontact) == (
        "gpu",
        "rocky9",
        False,
        3,
        "new",
        "10.1.1.1",
        "ready",
        1234.5,
    )
    assert dict(a.attrs) == {"rack": "7"}
    assert a.updated >= a.created
    store.update([mac(1)], {"attrs.rack": ""})  # an empty value removes the attribute
    assert dict(store.get(mac(1)).attrs) == {}  # type: ignore[union-attr]
    assert dict(store.get(mac(2)).attrs) == {"rack": "7"}  # type: ignore[union-attr]
    store.update([mac(1)], {"hostname": "a-renamed"})
    assert store.get(mac(1)).hostname == "a-renamed"  # type: ignore[union-attr]
    store.update([mac(1)], {"hostname": "a-renamed"})  # its own name again is no clash
    assert store.count_by_status() == {"ready": 2}


@pytest.mark.parametrize(
    ("nodeids", "changes", "error"),
    [
        ([1], {"group": "x", "colour": "blue"}, ConflictError),  # unknown key: nothing written
        ([1], {"hostname": "b"}, AlreadyExistsError),
        ([1, 2], {"hostname": "c"}, ConflictError),  # one hostname for several nodes
        ([1, 9], {"group": "x"}, NotFoundError),  # one unknown node: none changed
    ],
)
def test_update_refused_writes_nothing(
    store: NodeStore, nodeids: list[int], changes: dict[str, object], error: type[Exception]
) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a", group="g"))
    store.add(NewNode(nodeid=mac(2), hostname="b", group="g"))
    before = snapshot(store)
    with pytest.raises(error):
        store.update([mac(i) for i in nodeids], changes)
    assert snapshot(store) == before


# ---------------------------------------------------------------------- delete, replace, groups
def test_delete_frees_macs_and_unknown_node_deletes_nothing(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a", macs=(mac(1, 9),), attrs={"k": "v"}))
    store.add(NewNode(nodeid=mac(2), hostname="b"))
    before = snapshot(store)
    with pytest.raises(NotFoundError):
        store.delete([mac(2), mac(3)])
    assert snapshot(store) == before
    assert store.delete([mac(1)]) == 1
    assert store.get(mac(1)) is None and store.get(mac(1, 9)) is None
    again = store.add(NewNode(nodeid=mac(1, 9), hostname="a"))  # MAC and name are free again
    assert dict(again.attrs) == {}  # attributes went with the deleted node
    assert store.delete([]) == 0


def test_replace_moves_hardware_under_the_old_name(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="n0001", group="g", vnfs="v", macs=(mac(1, 9),), attrs={"rack": "3"}))
    store.update([mac(1)], {"status": "ready", "ip": "10.0.0.1", "lastcontact": 99.0})
    store.add(NewNode(nodeid=mac(2), hostname="n0050", macs=(mac(2, 9),), attrs={"junk": "x"}))
    node = store.replace("n0001", "n0050")
    assert node.hostname == "n0001" and node.nodeid == mac(2)
    assert set(node.macs) == {mac(2), mac(2, 9)}
    assert (node.group, node.vnfs, dict(node.attrs)) == ("g", "v", {"rack": "3"})
    assert (node.status, node.ip, node.lastcontact) == ("", "", 0)
    assert store.get_by_hostname("n0050") is None
    assert store.get(mac(1)) is None and store.get(mac(1, 9)) is None
    assert store.get(mac(2, 9)) == node
    assert len(store.list_nodes()) == 1


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [("zz", "b", NotFoundError), ("a", "zz", NotFoundError), ("a", "a", ConflictError)],
)
def test_replace_refused_writes_nothing(store: NodeStore, old: str, new: str, error: type[Exception]) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a"))
    store.add(NewNode(nodeid=mac(2), hostname="b"))
    before = snapshot(store)
    with pytest.raises(error):
        store.replace(old, new)
    assert snapshot(store) == before


def test_rename_group(store: NodeStore) -> None:
    for i, group in enumerate(["old", "old", "keep"]):
        store.add(NewNode(nodeid=mac(i), hostname=f"h{i}", group=group))
    assert store.rename_group("old", "new") == 2
    assert store.rename_group("missing", "x") == 0
    assert store.groups() == ["keep", "new"]


# ---------------------------------------------------------------------- import
def test_import_strict_is_all_or_nothing(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a"))
    before = snapshot(store)
    batch = [NewNode(nodeid=mac(2), hostname="b"), NewNode(nodeid=mac(1), hostname="a2")]
    with pytest.raises(AlreadyExistsError, match="--update"):
        store.import_nodes(batch, update=False)
    assert snapshot(store) == before
    outcome = store.import_nodes(
        [NewNode(nodeid=mac(2), hostname="b"), NewNode(nodeid=mac(3), hostname="c")], update=False
    )
    assert (outcome.added, outcome.updated, outcome.unchanged) == (2, 0, 0)


def test_import_update_counts_and_clash(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a", group="g", vnfs="v", ip="10.0.0.1"))
    store.add(NewNode(nodeid=mac(2), hostname="b"))
    outcome = store.import_nodes(
        [
            NewNode(nodeid=mac(1), hostname="a"),  # empty group/vnfs/ip keep the stored ones: unchanged
            NewNode(nodeid=mac(2), hostname="b2", group="h"),
            NewNode(nodeid=mac(3), hostname="c"),
        ],
        update=True,
    )
    assert (outcome.added, outcome.updated, outcome.unchanged) == (1, 1, 1)
    b = store.get(mac(2))
    assert b is not None and (b.hostname, b.group) == ("b2", "h")
    assert store.get(mac(1)).ip == "10.0.0.1"  # type: ignore[union-attr]
    before = snapshot(store)
    with pytest.raises(AlreadyExistsError):
        store.import_nodes([NewNode(nodeid=mac(4), hostname="d"), NewNode(nodeid=mac(1), hostname="c")], update=True)
    assert snapshot(store) == before


# ---------------------------------------------------------------------- check-ins and events
def test_record_contacts_batch(store: NodeStore) -> None:
    store.add(NewNode(nodeid=mac(1), hostname="a", macs=(mac(1, 9),)))
    store.add(NewNode(nodeid=mac(2), hostname="b", ip="10.0.0.2"))
    store.record_contacts([])
    store.record_contacts(
        [
            ContactUpdate(nodeid=mac(1), status="init", ip="10.0.0.1", t=100.0, boot_id="b1", phase="hello"),
            ContactUpdate(nodeid=mac(2), status="ready", ip="", t=101.0),  # empty ip/boot/phase keep the old
            ContactUpdate(nodeid=mac(7), status="ready", ip="", t=101.0),  # unknown node: ignored
            ContactUpdate(nodeid=mac(1, 9), status="ready", ip="", t=102.0),  # by extra MAC; last one wins
        ]
    )
    a, b = store.get(mac(1)), store.get(mac(2))
    assert a is not None and b is not None
    assert (a.status, a.ip, a.lastcontact, a.boot_id, a.phase) == ("ready", "10.0.0.1", 102.0, "b1", "hello")
    assert (b.status, b.ip, b.lastcontact) == ("ready", "10.0.0.2", 101.0)
    assert store.count_by_status() == {"ready": 2}
    assert len(store.list_nodes()) == 2


def test_events_timeline_latest_boot_and_retention(store: NodeStore) -> None:
    node = mac(1)
    store.record_events([])
    store.record_events(
        [
            PhaseEvent(nodeid=node, boot_id="boot1", phase="hello", t=1.0),
            PhaseEvent(nodeid=node, boot_id="boot1", phase="kexec", t=2.0, ok=False, done=False, detail="x" * 5000),
            PhaseEvent(nodeid=mac(2), boot_id="other", phase="hello", t=1.5),
        ]
    )
    timeline = store.events(node)
    assert [(e.phase, e.ok, e.done) for e in timeline] == [("hello", True, True), ("kexec", False, False)]
    assert len(timeline[1].detail) == 1000  # bounded detail
    store.record_events([PhaseEvent(nodeid=node, boot_id="boot2", phase="hello", t=3.0)])
    assert [e.boot_id for e in store.events(node)] == ["boot2"]
    assert [e.phase for e in store.events(node, "boot1")] == ["hello", "kexec"]
    assert store.events(node, "nope") == []
    store.record_events([PhaseEvent(nodeid=node, boot_id="boot3", phase=f"p{i}", t=10.0 + i) for i in range(250)])
    kept = store.events(node, "boot3")
    assert len(kept) == EVENTS_PER_NODE
    assert kept[0].phase == "p50" and kept[-1].phase == "p249"  # the newest survive
    assert store.events(node, "boot1") == []
    assert len(store.events(mac(2))) == 1  # another node's timeline is untouched


# ---------------------------------------------------------------------- pending
def test_pending_note_list_drop(store: NodeStore) -> None:
    store.note_pending(EnrollRequest(nodeid=mac(1), macs=(mac(1), mac(1, 9)), nodename="wish"), "10.0.0.1", 10.0)
    store.note_pending(EnrollRequest(nodeid=mac(2)), "10.0.0.2", 11.0)
    store.note_pending(EnrollRequest(nodeid=mac(1), macs=(mac(1),)), "10.0.0.3", 12.0)
    pend = store.pending()
    assert [p.nodeid for p in pend] == [mac(1), mac(2)]
    first = pend[0]
    assert (first.ip, first.first_seen, first.last_seen, first.macs, first.nodename) == (
        "10.0.0.3",
        10.0,
        12.0,
        (mac(1),),
        "wish",
    )
    assert pend[1].macs == ()
    assert store.drop_pending([mac(1), mac(5)]) == 1
    assert [p.nodeid for p in store.pending()] == [mac(2)]
    assert store.drop_pending([]) == 0


# ---------------------------------------------------------------------- schema
def test_schema_version_reopen_and_newer_schema_refused(backend: Backend) -> None:
    with backend.open() as first:
        assert first.schema_version() == SCHEMA_VERSION
        first.add(NewNode(nodeid=mac(1), hostname="a"))
        with backend.open() as second:  # a second connection (CLI next to the daemon) migrates nothing
            assert second.schema_version() == SCHEMA_VERSION
            assert second.get(mac(1)) is not None
    assert backend.sql("SELECT count(*) FROM schema_version") == [(1,)]
    backend.sql(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(PerceusError, match="newer than this Perceus"):
        backend.open()
    assert backend.sql("SELECT count(*) FROM node") == [(1,)]


# ---------------------------------------------------------------------------------------------- modules, masters


def test_module_activations(store: NodeStore) -> None:
    a = Activation(module="hostname", state="init", scope="all")
    b = Activation(module="passwdfile", state="ready", scope="group", target="gpu")
    assert store.activate([a, b]) == 2
    assert store.activate([a]) == 0  # idempotent
    assert store.activations() == [a, b]
    assert store.activations("passwdfile") == [b] and b.role == "ready/group/gpu"
    assert store.deactivate([a, Activation(module="x", state="init", scope="all")]) == 1
    assert store.activations() == [b]


def test_master_heartbeats(store: NodeStore) -> None:
    store.heartbeat(MasterInfo(id="m1", endpoint="tcp://10.0.0.1:9987", host="h1", pid=10, started=1.0, heartbeat=2.0))
    store.heartbeat(
        MasterInfo(id="m1", endpoint="tcp://10.0.0.1:9987", host="h1", pid=11, started=3.0, heartbeat=4.0, served=7)
    )
    store.heartbeat(MasterInfo(id="m0", endpoint="tcp://10.0.0.2:9987", started=1.0, heartbeat=1.5))
    masters = store.masters()
    assert [m.id for m in masters] == ["m0", "m1"]
    assert (masters[1].pid, masters[1].heartbeat, masters[1].served) == (11, 4.0, 7)
    assert store.forget_master("m0") == 1 and [m.id for m in store.masters()] == ["m1"]
