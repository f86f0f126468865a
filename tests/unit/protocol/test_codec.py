"""Protocol v1 codec: round trips, validation, golden frames, hostile bytes."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perceus.errors import ProtocolError
from perceus.protocol import codec
from perceus.protocol.enums import ErrorCode, Phase, Stage, WaitReason
from perceus.protocol.messages import (
    ALL_MESSAGES,
    Ack,
    Action,
    BootFile,
    CheckIn,
    Chunk,
    Error,
    Event,
    Exec,
    ExecResult,
    GetChunks,
    GetManifest,
    GetSources,
    Handover,
    Hello,
    Manifest,
    Message,
    PeerGet,
    Report,
    Reprovision,
    ReprovisionAck,
    Script,
    ScriptResult,
    Sources,
    SwarmPeer,
    Sync,
    Wait,
    Welcome,
)

GOLDEN = Path(__file__).parents[2] / "data" / "wire" / "v1"
MAC = "52:54:00:12:34:56"

# One example of every message: the golden frames under tests/data/wire/v1/ were encoded from these and
# must decode to them forever (nodes in the field lag the master).
EXAMPLES: dict[str, Message] = {
    "hello": Hello(
        rid=1,
        macs=(MAC, "52:54:00:12:34:57"),
        state="init",
        stage=Stage.STAGE1,
        boot_id="b1",
        agent_version="2.0.0",
        seq=1,
        nodename="",
        inventory={"cpus": 1, "mem_mb": 512},
    ),
    "handover": Handover(rid=3, node=MAC, boot_id="b1", next_key="ab" * 32, seq=9),
    "checkin": CheckIn(
        rid=2,
        node=MAC,
        state="ready",
        boot_id="b1",
        seq=7,
        stage=Stage.RUNTIME,
        events=({"event": "module_applied", "module": "passwdfile"},),
    ),
    "report": Report(
        rid=3,
        node=MAC,
        boot_id="b1",
        phase=Phase.DHCP,
        at=1700000000.25,
        ok=True,
        done=True,
        detail="eth0 10.77.0.100/24",
    ),
    "script_result": ScriptResult(rid=4, node=MAC, boot_id="b1", state="init", status=0, output="ok\n"),
    "get_manifest": GetManifest(rid=5, node=MAC, capsule="ab" * 32),
    "get_chunks": GetChunks(rid=6, node=MAC, hashes=("cd" * 32, "ef" * 32)),
    "exec_result": ExecResult(rid=7, node=MAC, job="j1", status=0, stdout=b"hi\n", stderr=b""),
    "welcome": Welcome(
        rid=1,
        node=MAC,
        hostname="n0000",
        group="cluster",
        vnfs="debian",
        debug=1,
        interval=300.0,
        capsule="ab" * 32,
        scripts=(Script(name="10-x.sh", body="#!/bin/sh\necho\n"),),
        actions=(Action(module="hostname", kind="set", data={"name": "n0000"}),),
        env={"NODENAME": "n0000"},
        masters=("10.0.0.1:9987",),
    ),
    "wait": Wait(rid=1, reason=WaitReason.NO_CAPSULE, retry_after=10.0, message="no VNFS", node=MAC, hostname="n0000"),
    "ack": Ack(rid=2, interval=60.0),
    "manifest": Manifest(rid=5, capsule="debian", hash="ab" * 32, data=b"\x81\xa1k\xa1v", signature=b""),
    "chunk": Chunk(rid=6, hash="cd" * 32, size=1048576),
    "error": Error(rid=9, code=ErrorCode.UNKNOWN_NODE, message="not a known node"),
    "sync": Sync(nodes=(MAC,)),
    "exec": Exec(job="j1", nodes=(MAC,), argv=("uname", "-a"), timeout=30.0),
    "event": Event(event="node_enrolled", node=MAC, hostname="n0000", at=1700000000.0, data={"k": 1}),
    # since v1 + swarm (issue 21)
    "get_sources": GetSources(
        rid=10, node=MAC, manifest="ab" * 32, want=(3, 1, 2), credit=2, have=(0,), bad=(), dead=(), port=9989, seq=9
    ),
    "peer_get": PeerGet(rid=11, node=MAC, manifest="ab" * 32, hash="cd" * 32, token=b"\x01" * 64 + b"1700000000.000"),
    "sources": Sources(
        rid=10,
        manifest="ab" * 32,
        peers=(SwarmPeer(node="52:54:00:12:34:57", endpoint="tcp://10.0.0.5:9989", key="ef" * 32),),
        assign=((3, 0), (1, -1)),
        token=b"\x02" * 64,
        issued=1700000000.0,
        now=1700000000.5,
        retry_after=0.0,
    ),
    # since v1 + reprovision (issue 19)
    "reprovision": Reprovision(
        job="r1",
        node=MAC,
        kernel=BootFile(url="http://10.0.0.1:9989/vmlinuz", sha256="ab" * 32, size=9000000),
        initrds=(BootFile(url="http://10.0.0.1:9989/stage1.cpio.zst", sha256="cd" * 32, size=31000000),),
        cmdline="console=ttyS0,115200 quiet perceus.master=10.0.0.1:9987 perceus.debug=1",
    ),
    "reprovision_ack": ReprovisionAck(
        rid=12, node=MAC, boot_id="b2", job="r1", ok=True, detail="kexec loaded", next_key="ef" * 32, seq=40
    ),
}


def test_every_message_has_an_example() -> None:
    assert {cls.TYPE for cls in ALL_MESSAGES} == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_round_trip(name: str) -> None:
    msg = EXAMPLES[name]
    assert codec.decode(codec.encode(msg)) == msg


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden_frame_decodes(name: str) -> None:
    frame = (GOLDEN / f"{name}.msgpack").read_bytes()
    assert codec.decode(frame) == EXAMPLES[name]


def test_unknown_fields_are_ignored() -> None:
    data = codec.to_dict(EXAMPLES["ack"]) | {"future_field": [1, 2, 3]}
    assert codec.decode(msgpack.packb(data)) == EXAMPLES["ack"]


@pytest.mark.parametrize(
    ("change", "code", "text"),
    [
        ({"v": None}, ErrorCode.BAD_MESSAGE, "version"),
        ({"v": 0}, ErrorCode.UNSUPPORTED_VERSION, "too old"),
        ({"t": "bogus"}, ErrorCode.BAD_MESSAGE, "unknown message type"),
        ({"stage": "stage9"}, ErrorCode.BAD_MESSAGE, "unknown Stage"),
        ({"macs": "not-a-list"}, ErrorCode.BAD_MESSAGE, "expected an array"),
        ({"seq": True}, ErrorCode.BAD_MESSAGE, "expected int"),
        ({"seq": "1"}, ErrorCode.BAD_MESSAGE, "expected int"),
        ({"inventory": [1]}, ErrorCode.BAD_MESSAGE, "expected a map"),
    ],
)
def test_invalid_fields(change: dict[str, object], code: ErrorCode, text: str) -> None:
    data = codec.to_dict(EXAMPLES["hello"]) | change
    with pytest.raises(ProtocolError) as err:
        codec.decode(msgpack.packb(data))
    assert err.value.code == code
    assert text in str(err.value)


def test_missing_required_field() -> None:
    data = codec.to_dict(EXAMPLES["hello"])
    del data["boot_id"]
    with pytest.raises(ProtocolError, match="boot_id: missing"):
        codec.decode(msgpack.packb(data))


def test_size_cap() -> None:
    with pytest.raises(ProtocolError) as err:
        codec.decode(b"\x00" * (codec.MAX_HEADER_BYTES + 1))
    assert err.value.code == ErrorCode.TOO_LARGE


def test_request_id_of_garbage() -> None:
    assert codec.request_id(b"\xc1") == 0
    assert codec.request_id(msgpack.packb({"rid": 42})) == 42
    assert codec.request_id(msgpack.packb({"rid": -1})) == 0


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_protocol_error(frame: bytes) -> None:
    try:
        codec.decode(frame)
    except ProtocolError:
        pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(sorted(EXAMPLES)), st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_mutated_messages_only_raise_protocol_error(name: str, mutation: dict[str, object]) -> None:
    data = codec.to_dict(EXAMPLES[name]) | mutation
    try:
        codec.decode(msgpack.packb(data, use_bin_type=True))
    except ProtocolError:
        pass
