"""Hostile clients against a real perceus-bus (CurveZMQ on, 127.0.0.1): each attack of issue 14 fails and is
audited.  Every test here failed on the code before issue 14 (the attack worked, or left no audit line)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
from tests.integration.security.conftest import cli, master_pub
from tests.integration.security.hostile import (
    BOOT,
    MAC,
    audit_has,
    encode,
    has_secrets,
    node_client,
    pipelined,
    refused,
    rss_kb,
    runtime_hello,
    stage1_hello,
    write_host_keys,
)

from perceus.agent.bus import BusClient, CurveClient, Subscriber, new_keypair
from perceus.lab.bus import RunningBus
from perceus.master.bus.control import poke
from perceus.master.bus.handlers import MAX_PENDING_NODES
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.enums import Stage, WaitReason
from perceus.protocol.messages import Ack, CheckIn, Exec, ExecResult, Handover, Hello, Sync, Wait, Welcome

PROBE = "1.5"


def _enrolled(bus: RunningBus, policy: str, **hello_args: str) -> tuple[BusClient, Wait]:
    """A real node in stage one, enrolled (approved first under `approve`), waiting for a capsule."""
    node = node_client(bus)
    reply = node.request(stage1_hello(**hello_args))
    if policy == "approve":
        assert isinstance(reply, Wait) and reply.reason == WaitReason.PENDING_APPROVAL
        assert cli(bus.paths, "node", "approve", MAC) == 0
        reply = node.request(stage1_hello(**hello_args))
    assert isinstance(reply, Wait) and reply.reason == WaitReason.NO_CAPSULE and reply.node == MAC
    return node, reply


@pytest.mark.parametrize("policy", ["open", "approve"])
def test_mac_takeover_of_a_live_node_is_refused(
    secure_bus: Callable[..., RunningBus], paths: Paths, policy: str
) -> None:
    write_host_keys(paths)  # before the bus starts: it reads them once, as root
    bus = secure_bus(policy, bus_session_probe=PROBE)
    node, _ = _enrolled(bus, policy)
    attacker = node_client(bus)
    try:
        # Claiming the node's own boot with another key: refused at once.
        assert refused(attacker, Hello(macs=(MAC,), state="ready", stage=Stage.RUNTIME, boot_id=BOOT), "REPLAYED")
        # A fresh boot id and `stage=runtime` (the 1.x-era takeover): the bound session is probed first.
        first = attacker.request(runtime_hello())
        assert isinstance(first, Wait) and first.reason == WaitReason.BUSY and not first.node
        probe = node.take_pushed(5.0)
        assert isinstance(probe, Sync) and MAC in probe.nodes  # pushed to the bound session only
        assert isinstance(node.request(CheckIn(node=MAC, state="ready", boot_id=BOOT)), Ack)  # alive
        time.sleep(float(PROBE) + 0.2)
        assert refused(attacker, runtime_hello(), "REPLAYED")  # the node answered: no takeover
        assert refused(attacker, CheckIn(node=MAC, state="ready", boot_id="ab" * 16), "UNKNOWN_NODE")
        assert refused(attacker, ExecResult(node=MAC, job="0" * 16, status=0), "UNKNOWN_NODE")
        assert isinstance(node.request(CheckIn(node=MAC, state="ready", boot_id=BOOT)), Ack)  # still the node
    finally:
        attacker.close()
        node.close()
    assert audit_has(bus.paths, "refused_takeover") and audit_has(bus.paths, "session_probe")
    stats = poke(bus.paths.control_socket, "security")
    assert stats is not None and stats["host_keys_sent"] == 0


def test_secrets_go_only_to_the_session_stage_one_handed_over(
    secure_bus: Callable[..., RunningBus], paths: Paths
) -> None:
    write_host_keys(paths)
    bus = secure_bus("open", bus_session_probe=PROBE, bus_kexec_window="3")
    public, secret = new_keypair()
    stage1, _ = _enrolled(bus, "open", next_key=public.hex())
    stage1.close()  # stage one kexecs: silent from now on
    attacker = node_client(bus)
    provisiond = node_client(bus, (public, secret))
    try:
        # An attacker declaring `stage=runtime` while the node is between kernels: probed, then let in as an
        # unproven session — it gets the node's runtime welcome but no secret.
        first = attacker.request(runtime_hello())
        assert isinstance(first, Wait) and first.reason == WaitReason.BUSY
        time.sleep(float(PROBE) + 0.2)
        again = attacker.request(runtime_hello())  # still the kexec window: provisiond has precedence
        assert isinstance(again, Wait) and again.reason == WaitReason.BUSY
        time.sleep(3 - float(PROBE))
        taken = attacker.request(runtime_hello())
        assert isinstance(taken, Welcome) and not has_secrets(taken)
        # provisiond with the key stage one announced continues the boot: proven, it gets the host keys …
        welcome = provisiond.request(runtime_hello(boot="cd" * 16))
        assert isinstance(welcome, Welcome) and has_secrets(welcome)
        # … and the attacker is cut off.
        assert refused(attacker, CheckIn(node=MAC, state="ready", boot_id="ab" * 16), "UNKNOWN_NODE")
        assert isinstance(provisiond.request(CheckIn(node=MAC, state="ready", boot_id="cd" * 16)), Ack)
    finally:
        attacker.close()
        provisiond.close()
    assert audit_has(bus.paths, "session_continued") and audit_has(bus.paths, "session_replaced")


def test_a_declared_runtime_stage_gets_no_secrets(secure_bus: Callable[..., RunningBus], paths: Paths) -> None:
    """A known node, no live session (powered off, or the master restarted): whoever says `runtime` for it
    is welcomed as an unproven session — the node's runtime scripts, never the cluster's host keys."""
    write_host_keys(paths)
    paths.ensure()
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=MAC, hostname="n0000"))
    bus = secure_bus("open")
    liar = node_client(bus)
    try:
        reply = liar.request(runtime_hello())
        assert isinstance(reply, Welcome) and reply.node == MAC and not has_secrets(reply)
    finally:
        liar.close()
    stats = poke(bus.paths.control_socket, "security")
    assert stats is not None and stats["host_keys_sent"] == 0
    assert audit_has(bus.paths, "secrets_withheld")


def test_event_channel_refuses_strangers_and_never_carries_commands(secure_bus: Callable[..., RunningBus]) -> None:
    bus = secure_bus("open")
    hook = CurveClient(master_pub(bus.paths))
    node = BusClient([bus.endpoint], curve=hook)
    stranger = Subscriber(bus.events, [""], curve=CurveClient(master_pub(bus.paths)))
    enrolled: Subscriber | None = None
    try:
        assert isinstance(node.request(stage1_hello()), Wait)
        enrolled = Subscriber(bus.events, [""], curve=hook)  # the node's own key, bound at its welcome
        deadline = time.monotonic() + 10
        while True:  # slow joiner: publish syncs until the enrolled subscriber hears one
            assert poke(bus.paths.control_socket, "sync", nodes=[MAC])
            if isinstance(enrolled.wait(0.3), Sync) or time.monotonic() > deadline:
                break
        reply = poke(bus.paths.control_socket, "exec", nodes=[MAC], argv=["chpasswd", "root:hunter2"], seconds=5)
        assert reply is not None and reply["ok"]
        pushed = node.take_pushed(5.0)
        assert isinstance(pushed, Exec) and pushed.argv == ("chpasswd", "root:hunter2") and pushed.nodes == (MAC,)
        seen = []
        while (msg := enrolled.wait(0.5)) is not None:
            seen.append(msg)
        assert not any(isinstance(m, Exec) for m in seen)  # not even an enrolled subscriber sees the argv
        assert stranger.wait(0.5) is None  # refused at the handshake: receives nothing at all
    finally:
        node.close()
        stranger.close()
        if enrolled is not None:
            enrolled.close()
    assert audit_has(bus.paths, "refused_subscriber")


def test_flood_from_unenrolled_keys_keeps_tables_and_memory_flat(secure_bus: Callable[..., RunningBus]) -> None:
    """One attacker, many keys: 64-MAC hellos, runtime hellos for invented MACs, stage-one hellos under approve.
    Nothing is bound, the pending table stops at its cap, and the master's RSS stays flat."""

    bus = secure_bus("approve")
    key = master_pub(bus.paths)
    rng = random.Random(14)

    def mac() -> str:
        return "02:" + ":".join(f"{rng.randrange(256):02X}" for _ in range(5))

    def wave(n: int) -> list[bytes]:
        frames = []
        for i in range(n):
            frames.append(encode(Hello(macs=tuple(mac() for _ in range(64)), state="ready", stage=Stage.RUNTIME,
                                       boot_id=f"{i:032x}"), rid=i + 1))  # fmt: skip
            frames.append(encode(Hello(macs=tuple(mac() for _ in range(32)), state="ready", stage=Stage.RUNTIME,
                                       boot_id=f"{i:032x}"), rid=i + 1))  # fmt: skip
            frames.append(encode(stage1_hello(mac=mac(), boot=f"{i:032x}"), rid=i + 1))
        return frames

    warm = wave(700)
    assert pipelined(bus.endpoint, key, warm) == len(warm)
    before = rss_kb(bus.proc.pid)
    second = wave(700)
    assert pipelined(bus.endpoint, key, second) == len(second)
    third = wave(700)
    assert pipelined(bus.endpoint, key, third) == len(third)
    after = rss_kb(bus.proc.pid)
    stats = poke(bus.paths.control_socket, "security")
    assert stats is not None
    assert stats["bound"] == 0 and stats["keys"] == 0 and stats["continuations"] == 0, stats
    assert after - before < 8 * 1024, f"RSS grew {after - before} kB over 4,200 hostile hellos"
    with SQLiteStore(bus.paths.database) as store:
        assert len(store.pending()) == MAX_PENDING_NODES
    assert audit_has(bus.paths, "refused_pending_full")


def test_state_cannot_climb_out_of_nodescripts(secure_bus: Callable[..., RunningBus], paths: Paths) -> None:
    """`state` names a directory under nodescripts/; `..` once made the master read (and run) files outside."""
    paths.ensure()
    outside = paths.nodescripts.parent / "all"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "10-outside.sh").write_text("#!/bin/sh\necho read-from-outside-nodescripts\n")
    bus = secure_bus("open")
    node = node_client(bus)
    try:
        assert isinstance(node.request(stage1_hello()), Wait)
        for state in ("..", "ready\n", "../ready", "."):
            assert refused(node, CheckIn(node=MAC, state=state, boot_id=BOOT), "BAD_MESSAGE"), state
        assert refused(node, Hello(macs=(MAC,), state="..", stage=Stage.STAGE1, boot_id=BOOT), "BAD_MESSAGE")
        ok = node.request(CheckIn(node=MAC, state="ready", boot_id=BOOT))
        assert isinstance(ok, Ack) and not any("outside" in s.body for s in ok.scripts)
    finally:
        node.close()
    assert audit_has(bus.paths, "refused_bad_name")


def test_stage_one_releases_the_session_when_it_cannot_hand_over(
    secure_bus: Callable[..., RunningBus], paths: Paths
) -> None:
    """Root on disk (stateful): stage one's `handover` with no key ends the kexec window, so provisiond (a fresh
    key, unproven, no secrets) is let in after one probe instead of waiting the whole window."""
    write_host_keys(paths)
    bus = secure_bus("open", bus_session_probe=PROBE, bus_kexec_window="60")
    public, _ = new_keypair()
    stage1, _ = _enrolled(bus, "open", next_key=public.hex())
    try:
        assert isinstance(stage1.request(Handover(node=MAC, boot_id=BOOT, next_key="")), Ack)
    finally:
        stage1.close()
    provisiond = node_client(bus)  # no hand-over file on a disk root: a fresh key
    try:
        first = provisiond.request(runtime_hello())
        assert isinstance(first, Wait) and first.reason == WaitReason.BUSY
        time.sleep(float(PROBE) + 0.3)
        welcome = provisiond.request(runtime_hello())
        assert isinstance(welcome, Welcome) and not has_secrets(welcome)
    finally:
        provisiond.close()
    assert audit_has(bus.paths, "session_replaced") and audit_has(bus.paths, "secrets_withheld")
