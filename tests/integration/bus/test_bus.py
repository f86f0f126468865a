"""A real perceus-bus on 127.0.0.1 with real ZeroMQ clients: many agents, a burst of unknown nodes,
hostile frames, sync pushes, restart without loss."""

from __future__ import annotations

import os
import random
import threading
import time

import msgpack
import zmq

from perceus.agent.bus import BusClient
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.bus.control import poke
from perceus.master.config import NodeDefaults
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol import codec
from perceus.protocol.enums import ErrorCode, Stage, WaitReason
from perceus.protocol.messages import Ack, CheckIn, Error, Hello, Sync, Wait


def mac(i: int) -> str:
    return f"02:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}"


def hello(i: int) -> Hello:
    return Hello(macs=(mac(i),), state="init", stage=Stage.STAGE1, boot_id=f"boot{i}")


def test_hundreds_of_agents_enroll_with_distinct_names(bus: RunningBus) -> None:
    clients = [BusClient([bus.endpoint]) for _ in range(200)]
    try:
        rids = [c.send(hello(i)) for i, c in enumerate(clients)]  # all in flight at once
        replies = [c.receive(rid, 20.0)[0] for c, rid in zip(clients, rids, strict=True)]
    finally:
        for c in clients:
            c.close()
    assert all(isinstance(r, Wait) and r.reason == WaitReason.NO_CAPSULE for r in replies)
    names = {r.hostname for r in replies if isinstance(r, Wait)}
    assert len(names) == 200
    with SQLiteStore(bus.paths.database) as store:
        nodes = store.list_nodes()
    assert sorted(n.hostname for n in nodes) == [f"n{i:04d}" for i in range(200)]


def test_checkins_from_100_agents_are_recorded(bus: RunningBus) -> None:
    with SQLiteStore(bus.paths.database) as store:
        for i in range(100):
            store.add_auto(mac(i), NodeDefaults.load(bus.paths))

    errors: list[BaseException] = []

    def agent(i: int) -> None:
        try:
            client = BusClient([bus.endpoint])
            for seq in range(5):
                reply = client.request(CheckIn(node=mac(i), state="ready", boot_id="b", seq=seq), timeout=15)
                assert isinstance(reply, Ack)
            client.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = poke(bus.paths.control_socket, "stats")
    assert stats is not None and stats["received"] >= 500
    # Replies go out before the group commit (≤ 20 ms later): wait for it rather than race it.
    deadline = time.monotonic() + 5
    with SQLiteStore(bus.paths.database) as store:
        while {n.status for n in store.list_nodes()} != {"ready"} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {n.status for n in store.list_nodes()} == {"ready"}
        assert all(n.ip == "127.0.0.1" for n in store.list_nodes())


def test_hostile_frames_never_kill_the_bus(bus: RunningBus) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(bus.endpoint)
    rng = random.Random(7)
    garbage = [
        b"",
        b"\xc1",
        b"\x00" * 10,
        msgpack.packb([1, 2]),
        msgpack.packb({"v": 1, "t": "hello"}),
        msgpack.packb({"v": 99, "t": "checkin", "rid": 5, "node": 1}),
        os.urandom(5000),
    ]
    garbage += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))) for _ in range(300)]
    for frame in garbage:
        sock.send(frame)
    sock.send_multipart([b"a", b"b", b"c"])  # extra frames
    errors = 0
    while sock.poll(2000):
        reply = codec.decode(sock.recv_multipart()[0])
        assert isinstance(reply, Error)
        errors += 1
    assert errors >= len(garbage) - 5
    big = ctx.socket(zmq.DEALER)
    big.setsockopt(zmq.LINGER, 0)
    big.connect(bus.endpoint)
    big.send(b"x" * (codec.MAX_INBOUND_FRAME + 10))  # over MAXMSGSIZE: libzmq drops the connection
    client = BusClient([bus.endpoint])
    reply = client.request(hello(1), timeout=10)  # still alive and answering
    assert isinstance(reply, Wait)
    assert bus.proc.poll() is None
    sock.close()
    big.close()
    client.close()


def test_unknown_node_checkin_gets_error_code(bus: RunningBus) -> None:
    client = BusClient([bus.endpoint])
    rid = client.send(CheckIn(node=mac(77), state="ready", boot_id="b"))
    reply, _ = client.receive(rid, 10)
    assert isinstance(reply, Error) and reply.code == ErrorCode.UNKNOWN_NODE
    client.close()


def test_sync_is_published(bus: RunningBus) -> None:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"sync")
    sub.connect(bus.events)
    got = None
    for _ in range(20):  # PUB/SUB joins asynchronously: retry until the subscription is live
        assert poke(bus.paths.control_socket, "sync", nodes=[mac(1)]) == {"ok": True, "nodes": 1}
        if sub.poll(250):
            got = codec.decode(sub.recv_multipart()[1])
            break
    sub.close()
    assert isinstance(got, Sync) and got.nodes == (mac(1),)


def test_restart_keeps_enrolled_nodes(bus: RunningBus) -> None:
    client = BusClient([bus.endpoint])
    first = client.request(hello(5), timeout=10)
    client.close()
    assert bus.stop() == 0
    again = start_local_bus(bus.paths)
    try:
        client = BusClient([again.endpoint])
        second = client.request(hello(5), timeout=10)
        client.close()
    finally:
        again.stop()
    assert isinstance(first, Wait) and isinstance(second, Wait) and first.hostname == second.hostname == "n0000"
