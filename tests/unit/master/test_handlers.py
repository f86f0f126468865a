"""Handlers on a real SQLite store in tmp_path: enrollment, policies, check-ins, reports, error boundary."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from perceus.master.bus.handlers import Dispatcher, Incoming
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.enums import ErrorCode, Phase, Stage, WaitReason
from perceus.protocol.messages import (
    Ack,
    CheckIn,
    Error,
    Event,
    GetChunks,
    Hello,
    Message,
    Report,
    Wait,
    Welcome,
)


class FakeCapsules:
    def manifest_hash(self, name: str) -> str | None:
        return "ab" * 32 if name == "deb" else None


@pytest.fixture
def store(paths: Paths) -> Iterator[SQLiteStore]:
    s = SQLiteStore(paths.database)
    yield s
    s.close()


@pytest.fixture
def published() -> list[Message]:
    return []


@pytest.fixture
def dispatcher(store: SQLiteStore, paths: Paths, published: list[Message]) -> Dispatcher:
    return Dispatcher(store=store, paths=paths, publish=published.append, capsules=FakeCapsules(), clock=lambda: 1000.0)


def mac(i: int) -> str:
    return f"52:54:00:00:{i >> 8:02X}:{i & 0xFF:02X}"


def hello(i: int, state: str = "init", stage: Stage = Stage.STAGE1, rid: int = 1) -> Incoming:
    return Incoming(b"id%d" % i, Hello(rid=rid, macs=(mac(i),), state=state, stage=stage, boot_id=f"b{i}"), "10.0.0.9")


def test_unknown_node_enrolls_and_waits_for_capsule(
    dispatcher: Dispatcher, store: SQLiteStore, published: list[Message]
) -> None:
    (out,) = dispatcher.handle_batch([hello(1)])
    assert isinstance(out.msg, Wait) and out.msg.reason == WaitReason.NO_CAPSULE
    assert out.msg.hostname == "n0000" and out.msg.rid == 1
    node = store.get(mac(1))
    assert node is not None and node.hostname == "n0000" and node.group == "cluster"
    assert any(isinstance(m, Event) and m.event == "node_enrolled" for m in published)


def test_known_node_with_capsule_gets_welcome(dispatcher: Dispatcher, store: SQLiteStore, paths: Paths) -> None:
    store.add(NewNode(nodeid=mac(2), hostname="c1", vnfs="deb", group="gpu"))
    script = paths.nodescripts / "init" / "all" / "10-hi.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    (out,) = dispatcher.handle_batch([hello(2, rid=7)])
    assert isinstance(out.msg, Welcome)
    assert (out.msg.hostname, out.msg.capsule, out.msg.rid) == ("c1", "ab" * 32, 7)
    assert [s.name for s in out.msg.scripts] == ["10-hi.sh"] and out.msg.env["GROUPNAME"] == "gpu"


def test_disabled_and_unknown_capsule(dispatcher: Dispatcher, store: SQLiteStore) -> None:
    store.add(NewNode(nodeid=mac(3), hostname="off", enabled=False, vnfs="deb"))
    store.add(NewNode(nodeid=mac(4), hostname="nocap", vnfs="missing"))
    a, b = dispatcher.handle_batch([hello(3), hello(4)])
    assert isinstance(a.msg, Wait) and a.msg.reason == WaitReason.DISABLED
    assert isinstance(b.msg, Wait) and b.msg.reason == WaitReason.NO_CAPSULE and "missing" in b.msg.message


def test_only_init_enrolls(dispatcher: Dispatcher, store: SQLiteStore) -> None:
    (out,) = dispatcher.handle_batch([hello(5, state="ready", stage=Stage.RUNTIME)])
    assert isinstance(out.msg, Error) and out.msg.code == ErrorCode.UNKNOWN_NODE
    assert store.get(mac(5)) is None


def reconfigured(d: Dispatcher, paths: Paths, text: str) -> Dispatcher:
    """perceus.conf changed: a dispatcher started now (the test clock stands still, so no reload)."""
    paths.perceus_conf.write_text(text)
    return Dispatcher(store=d.store, paths=paths, publish=d.publish, capsules=d.capsules, clock=d.clock)


def test_approve_policy_keeps_node_pending(dispatcher: Dispatcher, store: SQLiteStore, paths: Paths) -> None:
    dispatcher = reconfigured(dispatcher, paths, "enrollment policy = approve\n")
    (out,) = dispatcher.handle_batch([hello(6)])
    assert isinstance(out.msg, Wait) and out.msg.reason == WaitReason.PENDING_APPROVAL
    assert store.get(mac(6)) is None and [p.nodeid for p in store.pending()] == [mac(6)]


def test_allowlist_refuses_unknown(dispatcher: Dispatcher, store: SQLiteStore, paths: Paths) -> None:
    dispatcher = reconfigured(dispatcher, paths, "enrollment policy = allowlist\n")
    with capture_logs() as logs:
        (out,) = dispatcher.handle_batch([hello(7)])
    assert isinstance(out.msg, Error) and out.msg.code == ErrorCode.UNKNOWN_NODE
    assert any(e["event"] == "node_refused" for e in logs)


def test_burst_of_unknown_nodes_gets_distinct_names_in_order(dispatcher: Dispatcher, store: SQLiteStore) -> None:
    replies = dispatcher.handle_batch([hello(i) for i in range(200)])
    names = [r.msg.hostname for r in replies if isinstance(r.msg, Wait)]
    assert names == [f"n{i:04d}" for i in range(200)]
    assert len({n.hostname for n in store.list_nodes()}) == 200


def test_checkin_is_group_committed(dispatcher: Dispatcher, store: SQLiteStore) -> None:
    store.add(NewNode(nodeid=mac(8), hostname="r1"))
    (out,) = dispatcher.handle_batch(
        [Incoming(b"x", CheckIn(rid=3, node=mac(8).lower(), state="ready", boot_id="b"), "10.1.1.1")]
    )
    assert isinstance(out.msg, Ack) and out.msg.interval == 300.0
    assert store.get(mac(8)).status == ""  # type: ignore[union-attr]  # not written until the flush
    assert dispatcher.pending_writes() == 1
    dispatcher.flush()
    node = store.get(mac(8))
    assert node is not None and (node.status, node.ip, node.lastcontact) == ("ready", "10.1.1.1", 1000.0)


def test_report_records_timeline(dispatcher: Dispatcher, store: SQLiteStore) -> None:
    store.add(NewNode(nodeid=mac(9), hostname="t1"))
    dispatcher.handle_batch([Incoming(b"x", Report(node=mac(9), boot_id="B", phase=Phase.DHCP, at=5.0), "")])
    dispatcher.handle_batch(
        [
            Incoming(
                b"x",
                Report(node=mac(9), boot_id="B", phase=Phase.KEXEC, at=9.0, ok=False, detail="ENOEXEC"),
                "",
            )
        ]
    )
    dispatcher.flush()
    events = store.events(mac(9))
    assert [(e.phase, e.ok) for e in events] == [("dhcp", True), ("kexec", False)]
    assert store.get(mac(9)).phase == "failed"  # type: ignore[union-attr]


def test_error_boundary(dispatcher: Dispatcher, store: SQLiteStore) -> None:
    bad_mac = Incoming(b"a", Hello(rid=4, macs=("nonsense",), state="init", stage=Stage.STAGE1, boot_id="b"), "")
    no_macs = Incoming(b"b", Hello(rid=5, macs=(), state="init", stage=Stage.STAGE1, boot_id="b"), "")
    bad_node = Incoming(b"c", CheckIn(rid=6, node="zz", state="ready", boot_id="b"), "")
    unsupported = Incoming(b"d", GetChunks(rid=7, node=mac(1), hashes=()), "")
    replies = dispatcher.handle_batch([bad_mac, no_macs, bad_node, unsupported, hello(10)])
    assert [type(r.msg).__name__ for r in replies] == ["Error", "Error", "Error", "Error", "Wait"]
    assert all(r.msg.code == ErrorCode.BAD_MESSAGE for r in replies[:4] if isinstance(r.msg, Error))
    assert [r.msg.rid for r in replies[:4]] == [4, 5, 6, 7]


def test_master_side_generator_is_deferred(dispatcher: Dispatcher, store: SQLiteStore, paths: Paths) -> None:
    store.add(NewNode(nodeid=mac(11), hostname="g1"))
    gen = paths.nodescripts / "ready" / "all" / "50-gen.sh"
    gen.write_text("#!/bin/sh\necho 'echo from-master'\n")
    os.chmod(gen, 0o755)
    replies = dispatcher.handle_batch([Incoming(b"x", CheckIn(node=mac(11), state="ready", boot_id="b"), "")])
    assert replies == [] and len(dispatcher.deferred) == 1
