"""Random frames at the ZAP and bus layers never crash the master (Hypothesis, > 100,000 frames in all).

The ZAP decision is fed directly (it is a pure function of the request frames); the bus gets its frames over
a real CurveZMQ session to an in-process BusServer with the security gate, and must still answer a real
`hello` afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceus.agent.bus import BusClient, CurveClient
from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.master.security.audit import AuditLog
from perceus.master.security.gate import Gate
from perceus.master.security.ratelimit import RateLimiter
from perceus.master.security.zap import ZapPolicy, ZapThread
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello, Wait

FUZZ = settings(
    max_examples=6_000,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
COUNT = {"zap": 0, "bus": 0}

_types = st.sampled_from(["hello", "checkin", "report", "get_chunks", "get_manifest", "exec_result", "x", ""])
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=40), st.binary(max_size=40),
    st.lists(st.text(max_size=20), max_size=4),
)  # fmt: skip
# Mostly near-valid maps (they reach the gate and the handlers), some raw bytes (they stop in the codec).
_header = st.one_of(
    st.fixed_dictionaries(
        {"v": st.sampled_from([1, 1, 2, 0, "1"]), "t": _types},
        optional={
            "rid": st.integers(-5, 2**40),
            "node": st.sampled_from(["52:54:00:00:00:01", "zz", "", "52:54:00:00:00:02"]),
            "macs": st.lists(st.sampled_from(["52:54:00:00:00:01", "bad", "00:00:00:00:00:00"]), max_size=3),
            "boot_id": st.sampled_from(["a", "b", ""]),
            "seq": st.integers(-3, 10),
            "state": st.sampled_from(["init", "ready", ""]),
            "stage": st.sampled_from(["stage1", "runtime", "x"]),
            "hashes": st.lists(st.text(max_size=64), max_size=3),
            "capsule": st.text(max_size=70),
            "extra": _values,
        },
    ).map(lambda d: msgpack.packb(d, use_bin_type=True)),
    st.binary(max_size=200),
)
_message = st.lists(st.one_of(_header, st.binary(max_size=64)), min_size=1, max_size=5)


def test_random_zap_requests_never_crash_the_handler(tmp_path: Path) -> None:
    gate = Gate(audit=AuditLog(tmp_path / "audit.log"), limiter=RateLimiter(0, 0))
    gate.revoked_keys.add(bytes(32).hex())
    policy = ZapPolicy(gate, RateLimiter(5, 10), AuditLog(tmp_path / "audit.log"))
    frame = st.one_of(
        st.sampled_from([b"1.0", b"CURVE", b"NULL", b"PLAIN", b"perceus", b"10.0.0.1", bytes(32)]),
        st.binary(max_size=300),
    )

    @FUZZ
    @given(st.lists(st.lists(frame, max_size=9), min_size=1, max_size=8))
    def one(requests: list[list[bytes]]) -> None:
        for frames in requests:
            COUNT["zap"] += len(frames)
            out = policy.answer(frames)
            assert out is None or (len(out) == 6 and out[2] in (b"200", b"400"))

    one()
    assert COUNT["zap"] >= 60_000


@pytest.fixture
def live_bus(paths: Paths) -> Iterator[tuple[BusServer, bytes]]:
    keys, _ = master_keys.ensure(paths)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    audit = AuditLog.for_paths(paths)
    gate = Gate(audit=audit, limiter=RateLimiter(0, 0))
    zap = ZapThread(ctx, ZapPolicy(gate, RateLimiter(0, 0), audit))
    zap.start()
    store = SQLiteStore(paths.database)
    dispatcher = Dispatcher(store=store, paths=paths)
    dispatcher.guard = gate.check
    server = BusServer(
        dispatcher, bind="tcp://127.0.0.1:*", context=ctx, curve=(keys.bus_public_z85, keys.bus_secret_z85)
    )
    thread = threading.Thread(target=server.serve, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    yield server, keys.bus_public
    server.stop()
    thread.join(5)
    assert not thread.is_alive(), "the bus loop died or hung"
    server.close()
    zap.stop()
    store.close()
    ctx.term()


def test_random_frames_on_the_bus_never_crash_the_master(live_bus: tuple[BusServer, bytes]) -> None:
    server, key = live_bus
    ctx = server.ctx
    sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    CurveClient(key)(sock)
    sock.connect(server.endpoint)

    @FUZZ
    @given(st.lists(_message, min_size=1, max_size=8))
    def one(messages: list[list[bytes]]) -> None:
        for frames in messages:
            COUNT["bus"] += len(frames)
            sock.send_multipart(frames)
        while sock.poll(0):
            sock.recv_multipart()

    one()
    assert COUNT["bus"] >= 60_000
    # Let the loop work through the queue before closing (LINGER 0 would drop what is still unsent); on a
    # loaded CI machine that takes a while, so wait on progress rather than a fixed time.
    deadline = time.monotonic() + 60
    while server.counters.received < 20_000 and time.monotonic() < deadline:
        while sock.poll(50):
            sock.recv_multipart()
    sock.close()
    c = BusClient([server.endpoint], context=ctx, curve=CurveClient(key))
    try:
        reply = c.request(Hello(macs=("52:54:00:00:00:09",), state="init", stage=Stage.STAGE1, boot_id="z"), timeout=20)
        assert isinstance(reply, Wait)  # enrolled (no capsule configured): the loop is alive and sane
        assert server.counters.received >= 20_000
    finally:
        c.close()
