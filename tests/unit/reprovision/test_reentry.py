"""The gate's re-entry rule: the stage-one key a proven provisiond announced for `reprovision` continues the
node at once; nobody else gets in while it is on its way; it is spent once, expires, and can be withdrawn."""

from __future__ import annotations

from pathlib import Path

from perceus.master.bus.handlers import Incoming, Outgoing
from perceus.master.security.audit import AuditLog
from perceus.master.security.gate import Gate
from perceus.master.security.ratelimit import RateLimiter
from perceus.protocol.enums import ErrorCode, Stage, WaitReason
from perceus.protocol.messages import CheckIn, Error, Hello, Message, Wait

MAC = "52:54:00:00:00:01"
STAGE1, RUNTIME, REENTRY, ATTACKER, NEXT = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32, "e5" * 32


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def _gate(tmp_path: Path) -> tuple[Gate, Clock, list[tuple[bytes, Message]]]:
    clock = Clock()
    pushed: list[tuple[bytes, Message]] = []
    gate = Gate(audit=AuditLog(tmp_path / "audit.log", clock=clock), limiter=RateLimiter(0, 0), clock=clock,
                probe_seconds=5.0, reprovision_window=60.0)  # fmt: skip
    gate.push = lambda identity, msg: pushed.append((identity, msg))
    return gate, clock, pushed


def _hello(key: str, stage: Stage, boot: str, next_key: str = "") -> Incoming:
    msg = Hello(macs=(MAC,), state="init" if stage == Stage.STAGE1 else "ready", stage=stage, boot_id=boot,
                next_key=next_key)  # fmt: skip
    return Incoming(key.encode()[:8], msg, "10.0.0.9", key)


def _welcomed(gate: Gate, item: Incoming) -> None:
    assert gate.check(item) is None
    assert isinstance(item.msg, Hello)
    gate.bind(item, item.msg, MAC, (MAC,))


def _running(gate: Gate) -> None:
    """A node booted normally: stage one, then provisiond continuing it with the hand-over key (proven)."""
    _welcomed(gate, _hello(STAGE1, Stage.STAGE1, "b1", next_key=RUNTIME))
    _welcomed(gate, _hello(RUNTIME, Stage.RUNTIME, "b2"))
    b = gate.bound(MAC)
    assert b is not None and b.proven and b.stage == Stage.RUNTIME


def _code(out: Outgoing | None) -> object:
    assert out is not None
    return out.msg.code if isinstance(out.msg, Error) else out.msg


def test_the_announced_stage_one_key_continues_the_node_without_a_probe(tmp_path: Path) -> None:
    gate, _, pushed = _gate(tmp_path)
    _running(gate)
    assert gate.expect_reentry(MAC, REENTRY)
    _welcomed(gate, _hello(REENTRY, Stage.STAGE1, "b3"))
    b = gate.bound(MAC)
    assert b is not None and b.key == REENTRY and b.proven and b.stage == Stage.STAGE1
    assert not pushed and not gate.reentries  # no liveness probe; the expectation is spent
    audit = (tmp_path / "audit.log").read_text()
    assert '"reentry_expected"' in audit and '"session_reentered"' in audit


def test_a_foreign_key_waits_out_the_window_and_loses_to_the_real_stage_one(tmp_path: Path) -> None:
    gate, clock, _ = _gate(tmp_path)
    _running(gate)
    gate.expect_reentry(MAC, REENTRY)
    out = gate.check(_hello(ATTACKER, Stage.STAGE1, "b9"))
    assert isinstance(out, Outgoing) and isinstance(out.msg, Wait) and out.msg.reason == WaitReason.BUSY
    clock.t += 30  # six probe windows: a plain probe would have let it in by now
    assert isinstance(_code(gate.check(_hello(ATTACKER, Stage.STAGE1, "b9"))), Wait)
    _welcomed(gate, _hello(REENTRY, Stage.STAGE1, "b3"))
    clock.t += 1
    assert isinstance(_code(gate.check(_hello(ATTACKER, Stage.STAGE1, "b9"))), Wait)  # probes the new session
    clock.t += 1
    assert gate.check(Incoming(b"x", CheckIn(node=MAC, state="init", boot_id="b3"), "10.0.0.9", REENTRY)) is None
    assert _code(gate.check(_hello(ATTACKER, Stage.STAGE1, "b9"))) == ErrorCode.REPLAYED  # it answered: alive
    assert gate.bound(MAC).key == REENTRY  # type: ignore[union-attr]


def test_only_a_proven_provisiond_may_announce_a_reentry(tmp_path: Path) -> None:
    gate, clock, _ = _gate(tmp_path)
    _welcomed(gate, _hello(STAGE1, Stage.STAGE1, "b1"))
    assert not gate.expect_reentry(MAC, REENTRY)  # stage one is not what `reprovision` talks to
    clock.t += 6
    assert isinstance(_code(gate.check(_hello(RUNTIME, Stage.RUNTIME, "b2"))), Wait)
    clock.t += 6
    _welcomed(gate, _hello(RUNTIME, Stage.RUNTIME, "b2"))  # unproven: no hand-over key was announced
    assert not gate.bound(MAC).proven  # type: ignore[union-attr]
    assert not gate.expect_reentry(MAC, REENTRY) and not gate.reentries
    assert not gate.expect_reentry("52:54:00:00:00:99", REENTRY)  # no session at all
    gate, _, _ = _gate(tmp_path)
    _running(gate)
    assert not gate.expect_reentry(MAC, "not-a-key") and not gate.reentries


def test_a_withdrawn_or_expired_reentry_leaves_the_normal_probe(tmp_path: Path) -> None:
    gate, clock, pushed = _gate(tmp_path)
    _running(gate)
    gate.expect_reentry(MAC, REENTRY)
    assert gate.forget_reentry(MAC) and not gate.forget_reentry(MAC)
    assert isinstance(_code(gate.check(_hello(ATTACKER, Stage.STAGE1, "b9"))), Wait) and pushed
    clock.t += 6  # one probe: the PXE boot after a BMC power cycle is not held for the withdrawn key
    _welcomed(gate, _hello(ATTACKER, Stage.STAGE1, "b9"))
    assert gate.bound(MAC).key == ATTACKER  # type: ignore[union-attr]

    gate, clock, pushed = _gate(tmp_path)
    _running(gate)
    gate.expect_reentry(MAC, REENTRY)
    clock.t += 61  # past the window: the key is only a new boot now, probed like any other
    assert isinstance(_code(gate.check(_hello(REENTRY, Stage.STAGE1, "b3"))), Wait) and pushed


def test_the_reentered_boot_continues_normally_and_its_key_is_spent(tmp_path: Path) -> None:
    gate, clock, pushed = _gate(tmp_path)
    _running(gate)
    gate.expect_reentry(MAC, REENTRY)
    _welcomed(gate, _hello(REENTRY, Stage.STAGE1, "b3", next_key=NEXT))  # announces the next provisiond
    _welcomed(gate, _hello(NEXT, Stage.RUNTIME, "b4"))  # …which continues it, proven, as at any boot
    b = gate.bound(MAC)
    assert b is not None and b.key == NEXT and b.proven and not pushed
    clock.t += 1
    assert isinstance(_code(gate.check(_hello(REENTRY, Stage.STAGE1, "b5"))), Wait)  # spent: probed, not let in
