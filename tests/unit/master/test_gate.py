"""The security gate as a pure function of requests: session continuity rules and bounded tables."""

from __future__ import annotations

from pathlib import Path

from perceus.master.bus.handlers import Incoming, Outgoing
from perceus.master.security.audit import AuditLog
from perceus.master.security.gate import BINDING_TTL, Gate
from perceus.master.security.ratelimit import RateLimiter
from perceus.protocol.enums import ErrorCode, Stage, WaitReason
from perceus.protocol.messages import CheckIn, Error, Hello, Message, Sync, Wait

MAC = "52:54:00:00:00:01"
K1, K2, K3 = "a1" * 32, "b2" * 32, "c3" * 32


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _gate(tmp_path: Path, **kw: object) -> tuple[Gate, Clock, list[tuple[bytes, Message]]]:
    clock = Clock()
    pushed: list[tuple[bytes, Message]] = []
    gate = Gate(audit=AuditLog(tmp_path / "audit.log", clock=clock), limiter=RateLimiter(0, 0), clock=clock,
                probe_seconds=5.0, **kw)  # type: ignore[arg-type]  # fmt: skip
    gate.push = lambda identity, msg: pushed.append((identity, msg))
    return gate, clock, pushed


def _hello(key: str, stage: Stage = Stage.STAGE1, boot: str = "b1", next_key: str = "", mac: str = MAC) -> Incoming:
    state = "init" if stage == Stage.STAGE1 else "ready"
    msg = Hello(macs=(mac,), state=state, stage=stage, boot_id=boot, next_key=next_key)
    return Incoming(key.encode()[:8], msg, "10.0.0.9", key)


def _welcomed(gate: Gate, item: Incoming) -> None:
    assert gate.check(item) is None
    assert isinstance(item.msg, Hello)
    gate.bind(item, item.msg, MAC, (MAC,))


def _code(out: Outgoing | None) -> object:
    assert out is not None
    return out.msg.code if isinstance(out.msg, Error) else out.msg


def test_continuation_key_takes_over_without_a_probe_and_is_proven(tmp_path: Path) -> None:
    gate, _, pushed = _gate(tmp_path)
    _welcomed(gate, _hello(K1, next_key=K2))
    assert gate.bound(MAC) is not None and gate.bound(MAC).proven  # type: ignore[union-attr]
    _welcomed(gate, _hello(K2, Stage.RUNTIME, boot="b2"))
    b = gate.bound(MAC)
    assert b is not None and b.key == K2 and b.proven and b.stage == Stage.RUNTIME and not pushed
    assert not gate.continuations  # used once


def test_foreign_key_is_probed_then_refused_while_the_session_lives(tmp_path: Path) -> None:
    gate, clock, pushed = _gate(tmp_path)
    _welcomed(gate, _hello(K1))
    out = gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))
    assert isinstance(out, Outgoing) and isinstance(out.msg, Wait) and out.msg.reason == WaitReason.BUSY
    assert pushed and isinstance(pushed[0][1], Sync)
    clock.t += 1
    assert gate.check(Incoming(b"x", CheckIn(node=MAC, state="ready", boot_id="b1"), "10.0.0.9", K1)) is None
    clock.t += 5
    assert _code(gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))) == ErrorCode.REPLAYED
    assert gate.bound(MAC).key == K1  # type: ignore[union-attr]


def test_a_silent_session_is_replaced_by_a_new_boot_unproven_in_runtime(tmp_path: Path) -> None:
    gate, clock, _ = _gate(tmp_path)
    _welcomed(gate, _hello(K1))
    assert isinstance(_code(gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))), Wait)
    clock.t += 6
    _welcomed(gate, _hello(K3, Stage.RUNTIME, boot="b9"))
    b = gate.bound(MAC)
    assert b is not None and b.key == K3 and not b.proven  # a declared runtime stage proves nothing


def test_bindings_are_bounded_and_aged(tmp_path: Path) -> None:
    gate, clock, _ = _gate(tmp_path, max_bindings=100)
    for i in range(300):
        mac = f"52:54:00:00:{i >> 8:02X}:{i & 0xFF:02X}"
        item = _hello(f"{i:064x}", mac=mac)
        assert gate.check(item) is None
        assert isinstance(item.msg, Hello)
        gate.bind(item, item.msg, mac, (mac,))
    assert len(gate.bindings) == 100 and len(gate.keys) == 100
    clock.t += BINDING_TTL + 1
    late = Incoming(b"x", CheckIn(node="52:54:00:00:01:2B", state="ready", boot_id="b1"), "10.0.0.9", f"{299:064x}")
    assert _code(gate.check(late)) == ErrorCode.UNKNOWN_NODE  # aged out: say hello again


def test_unwelcomed_hellos_leave_no_state(tmp_path: Path) -> None:
    gate, _, _ = _gate(tmp_path)
    for i in range(1000):
        macs = tuple(f"02:00:00:00:{i >> 8:02X}:{j:02X}" for j in range(64))
        gate.check(Incoming(b"x", Hello(macs=macs, state="ready", stage=Stage.RUNTIME, boot_id=str(i)), "", K1))
        gate.check(_hello(f"{i:064x}", mac=macs[0]))
    assert gate.sizes()["bound"] == 0 and not gate.keys and not gate.probes and not gate.continuations


def test_kexec_window_gives_the_hand_over_key_precedence(tmp_path: Path) -> None:
    gate, clock, _ = _gate(tmp_path, kexec_window=20.0)
    _welcomed(gate, _hello(K1, next_key=K2))  # stage one announced provisiond's key, then kexecs (silent)
    assert isinstance(_code(gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))), Wait)
    clock.t += 6  # past the probe, inside the kexec window: still no way in
    assert isinstance(_code(gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))), Wait)
    _welcomed(gate, _hello(K2, Stage.RUNTIME, boot="b2"))  # provisiond arrives and continues the boot
    clock.t += 1
    assert _code(gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))) == ErrorCode.REPLAYED


def test_one_source_beyond_the_rate_limit_is_refused_and_audited(tmp_path: Path) -> None:
    gate, _, _ = _gate(tmp_path)
    gate.limiter = RateLimiter(1, 2, clock=lambda: 0.0)
    codes = [_code(gate.check(_hello(K1))) if i >= 2 else gate.check(_hello(K1)) for i in range(4)]
    assert codes[:2] == [None, None] and codes[2:] == [ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]
    assert '"refused_rate_limited"' in (tmp_path / "audit.log").read_text()


def test_handover_without_a_key_ends_the_kexec_window(tmp_path: Path) -> None:
    gate, clock, _ = _gate(tmp_path, kexec_window=60.0)
    _welcomed(gate, _hello(K1, next_key=K2))
    assert gate.handover(MAC, "") is False and not gate.continuations
    assert isinstance(_code(gate.check(_hello(K3, Stage.RUNTIME, boot="b9"))), Wait)
    clock.t += 6  # one probe, not the 60 s window
    _welcomed(gate, _hello(K3, Stage.RUNTIME, boot="b9"))
    b = gate.bound(MAC)
    assert b is not None and b.key == K3 and not b.proven
