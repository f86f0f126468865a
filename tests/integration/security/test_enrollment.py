"""Negative tests over real CurveZMQ: approve gates unknown nodes, revoke cuts a live session, impostors and
replays get nothing."""

from __future__ import annotations

import dataclasses
import os
import pwd
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
from tests.integration.security.conftest import MAC, cli, client, master_pub

from perceus.agent.bus import BusClient, CurveClient
from perceus.errors import BusError
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.bus.control import poke
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.master.security.audit import audit_path, read
from perceus.protocol import codec
from perceus.protocol.enums import ErrorCode, Stage, WaitReason
from perceus.protocol.messages import Ack, CheckIn, Error, GetManifest, Hello, Wait

BOOT = "1f" * 16


def hello(mac: str = MAC, boot: str = BOOT) -> Hello:
    return Hello(macs=(mac,), state="init", stage=Stage.STAGE1, boot_id=boot)


def test_unknown_key_under_approve_gets_nothing_until_approved(secure_bus: Callable[..., RunningBus]) -> None:
    bus = secure_bus("approve")
    c = client(bus)
    try:
        reply = c.request(hello())
        assert isinstance(reply, Wait) and reply.reason == WaitReason.PENDING_APPROVAL and not reply.node
        with pytest.raises(BusError, match="UNKNOWN_NODE"):
            c.request(GetManifest(node=MAC, capsule="deb"))
        with pytest.raises(BusError, match="UNKNOWN_NODE"):
            c.request(CheckIn(node=MAC, state="ready", boot_id=BOOT))
        assert cli(bus.paths, "node", "approve", MAC) == 0
        reply = c.request(hello())
        assert isinstance(reply, Wait) and reply.reason == WaitReason.NO_CAPSULE and reply.node == MAC
        assert isinstance(c.request(CheckIn(node=MAC, state="ready", boot_id=BOOT)), Ack)
    finally:
        c.close()
    events = [r["event"] for r in read(audit_path(bus.paths))]
    assert "pending" in events and "approved" in events


def test_allowlist_refuses_unknown_macs(secure_bus: Callable[..., RunningBus]) -> None:
    bus = secure_bus("allowlist")
    c = client(bus)
    try:
        with pytest.raises(BusError, match="UNKNOWN_NODE"):
            c.request(hello())
    finally:
        c.close()


def test_revoked_node_is_cut_off_mid_session(secure_bus: Callable[..., RunningBus]) -> None:
    bus = secure_bus("open")
    hook = CurveClient(master_pub(bus.paths))
    c = BusClient([bus.endpoint], curve=hook)
    try:
        reply = c.request(hello())
        assert isinstance(reply, Wait) and reply.node == MAC  # enrolled (no capsule configured)
        assert isinstance(c.request(CheckIn(node=MAC, state="ready", boot_id=BOOT)), Ack)
        assert cli(bus.paths, "node", "revoke", "n0000") == 0
        # The same live session: refused at once.
        with pytest.raises(BusError, match="REVOKED"):
            c.request(CheckIn(node=MAC, state="ready", boot_id=BOOT))
        with pytest.raises(BusError, match="REVOKED"):
            c.request(GetManifest(node=MAC, capsule="deb"))
    finally:
        c.close()
    # The same key on a new connection: ZAP refuses the handshake, so no request is ever answered.
    again = BusClient([bus.endpoint], curve=hook)
    try:
        with pytest.raises(BusError, match="no reply"):
            again.request(CheckIn(node=MAC, state="ready", boot_id=BOOT), timeout=1.5)
    finally:
        again.close()
    # A new boot with a fresh key: its hello names a revoked MAC.
    fresh = client(bus)
    try:
        with pytest.raises(BusError, match="REVOKED"):
            fresh.request(hello(boot="2e" * 16))
    finally:
        fresh.close()
    events = [r["event"] for r in read(audit_path(bus.paths))]
    assert "revoked" in events and "refused_revoked_key" in events
    assert cli(bus.paths, "node", "revoke", "--undo", "n0000") == 0
    after = client(bus)
    try:
        assert isinstance(after.request(hello(boot="3d" * 16)), Wait)
    finally:
        after.close()


def test_impostor_master_is_never_talked_to(secure_bus: Callable[..., RunningBus], tmp_path: Path) -> None:
    real = secure_bus("open")
    other = Paths(tmp_path / "impostor-etc", tmp_path / "impostor-var")
    other.ensure()
    impostor = start_local_bus(other, security="curve")
    try:
        assert master_keys.load(other) != master_keys.load(real.paths)
        # The agent trusts the real master's key but is pointed at the impostor (DHCP spoofing, say).
        c = BusClient([impostor.endpoint], curve=CurveClient(master_pub(real.paths)))
        try:
            with pytest.raises(BusError, match="no reply"):
                c.request(hello(), timeout=2.0)
        finally:
            c.close()
        stats = poke(other.control_socket, "stats")
        assert stats is not None and stats["received"] == 0  # not one frame reached the impostor's loop
    finally:
        impostor.stop()


def test_plaintext_client_cannot_talk_to_a_curve_master(secure_bus: Callable[..., RunningBus]) -> None:
    bus = secure_bus("open")
    c = BusClient([bus.endpoint])
    try:
        with pytest.raises(BusError, match="no reply"):
            c.request(hello(), timeout=1.5)
    finally:
        c.close()


def _raw(endpoint: str, curve: CurveClient | None) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve(sock)
    sock.connect(endpoint)
    return sock


def _ask(sock: zmq.Socket[bytes], frame: bytes) -> object:
    sock.send(frame)
    assert sock.poll(5000), "no reply"
    return codec.decode(sock.recv())


def test_replayed_checkin_is_rejected_without_curve(paths: Paths) -> None:
    """Plaintext mode (bus security = none): the seq layer alone refuses a captured check-in sent again."""
    bus = start_local_bus(paths, security="none")
    try:
        agent = _raw(bus.endpoint, None)
        attacker = _raw(bus.endpoint, None)
        assert isinstance(_ask(agent, codec.encode(dataclasses.replace(hello(), rid=1, seq=1))), Wait)
        captured = codec.encode(CheckIn(rid=2, node=MAC, state="ready", boot_id=BOOT, seq=2))
        assert isinstance(_ask(agent, captured), Ack)
        replayed = _ask(attacker, captured)
        assert isinstance(replayed, Error) and replayed.code == ErrorCode.REPLAYED
        older = codec.encode(CheckIn(rid=3, node=MAC, state="ready", boot_id=BOOT, seq=1))
        out_of_order = _ask(agent, older)
        assert isinstance(out_of_order, Error) and out_of_order.code == ErrorCode.REPLAYED
        assert isinstance(_ask(agent, codec.encode(CheckIn(rid=4, node=MAC, state="ready", boot_id=BOOT, seq=3))), Ack)
        agent.close()
        attacker.close()
    finally:
        bus.stop()


def test_replayed_checkin_is_rejected_with_curve(secure_bus: Callable[..., RunningBus]) -> None:
    """With Curve the captured (decrypted) frame is useless from another key, and a repeat on the agent's own
    session is refused by seq."""
    bus = secure_bus("open")
    key = master_pub(bus.paths)
    agent = _raw(bus.endpoint, CurveClient(key))
    attacker = _raw(bus.endpoint, CurveClient(key))
    try:
        assert isinstance(_ask(agent, codec.encode(dataclasses.replace(hello(), rid=1, seq=1))), Wait)
        captured = codec.encode(CheckIn(rid=2, node=MAC, state="ready", boot_id=BOOT, seq=2))
        assert isinstance(_ask(agent, captured), Ack)
        stolen = _ask(attacker, captured)
        assert isinstance(stolen, Error) and stolen.code == ErrorCode.UNKNOWN_NODE
        # The attacker claiming the same boot with its own key is refused too.
        hijack = _ask(attacker, codec.encode(dataclasses.replace(hello(), rid=5, seq=9)))
        assert isinstance(hijack, Error) and hijack.code == ErrorCode.REPLAYED
        repeat = _ask(agent, captured)
        assert isinstance(repeat, Error) and repeat.code == ErrorCode.REPLAYED
    finally:
        agent.close()
        attacker.close()


def test_perceus_bus_drops_privileges(paths: Paths) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    bus = start_local_bus(paths, "--user", "nobody", security="curve")
    try:
        deadline = time.monotonic() + 5
        while True:
            status = Path(f"/proc/{bus.proc.pid}/status").read_text()
            uid = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            if set(uid) == {str(nobody)} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert set(uid) == {str(nobody)}  # real, effective, saved and fs uid
        c = client(bus)
        try:
            assert isinstance(c.request(hello()), Wait)  # still serving (and writing its store) as nobody
        finally:
            c.close()
        assert os.stat(paths.database).st_uid == nobody
    finally:
        bus.stop()
