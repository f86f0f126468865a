"""Boot-phase state machine: legal paths, illegal transitions, queued and flushed Reports."""

from __future__ import annotations

import itertools

import pytest
from structlog.testing import capture_logs

from perceus.agent.failures import PhaseError
from perceus.agent.phases import TRANSITIONS, Phases
from perceus.protocol.enums import Phase
from perceus.protocol.messages import Report


def _phases() -> Phases:
    ticks = itertools.count(100)
    return Phases("boot1", clock=lambda: float(next(ticks)))


def test_happy_path_stage1() -> None:
    p = _phases()
    for phase in (Phase.DRIVERS, Phase.DHCP, Phase.ENROLL, Phase.SCRIPTS, Phase.CAPSULE, Phase.KEXEC):
        p.enter(phase)
    assert [s.phase for s in p.history] == [Phase.BOOT, Phase.DRIVERS, Phase.DHCP, Phase.ENROLL, Phase.SCRIPTS,
                                           Phase.CAPSULE, Phase.KEXEC]  # fmt: skip
    assert all(s.end is not None and s.ok for s in p.history[:-1])


def test_retry_goes_back_to_enroll() -> None:
    p = _phases()
    for phase in (Phase.DRIVERS, Phase.DHCP, Phase.ENROLL, Phase.SCRIPTS):
        p.enter(phase)
    p.fail("node scripts exited 1", retry=Phase.ENROLL)
    assert p.current is Phase.ENROLL
    assert p.history[-2].ok is False and p.history[-2].detail == "node scripts exited 1"


@pytest.mark.parametrize(
    ("path", "bad"),
    [((), Phase.KEXEC), ((Phase.DRIVERS,), Phase.SCRIPTS), ((Phase.RUNTIME,), Phase.ENROLL),
     ((Phase.DRIVERS, Phase.DHCP), Phase.CAPSULE)],
)  # fmt: skip
def test_illegal_transition_raises_and_logs(path: tuple[Phase, ...], bad: Phase) -> None:
    p = _phases()
    for phase in path:
        p.enter(phase)
    with capture_logs() as logs, pytest.raises(PhaseError) as err:
        p.enter(bad)
    assert err.value.current == path[-1].value if path else Phase.BOOT.value
    assert err.value.wanted == bad.value
    event = next(e for e in logs if e["event"] == "illegal_phase_transition")
    assert event["wanted"] == bad.value


def test_failed_is_terminal_and_every_live_phase_can_fail() -> None:
    assert TRANSITIONS[Phase.FAILED] == frozenset()
    for phase, targets in TRANSITIONS.items():
        if phase not in (Phase.FAILED, Phase.RUNTIME):
            assert Phase.FAILED in targets
    p = _phases()
    p.fail("no network")
    with pytest.raises(PhaseError):
        p.enter(Phase.ENROLL)


def test_reports_queue_until_identified_then_flush_in_order_with_original_times() -> None:
    sent: list[Report] = []
    p = _phases()
    p.enter(Phase.DRIVERS)
    p.enter(Phase.DHCP)
    p.enter(Phase.ENROLL)
    assert sent == []
    p.identify("52:54:00:00:00:01", sent.append)
    assert [(r.phase, r.done) for r in sent] == [
        (Phase.BOOT, False), (Phase.BOOT, True), (Phase.DRIVERS, False), (Phase.DRIVERS, True),
        (Phase.DHCP, False), (Phase.DHCP, True), (Phase.ENROLL, False),
    ]  # fmt: skip
    assert all(r.node == "52:54:00:00:00:01" and r.boot_id == "boot1" for r in sent)
    assert [r.at for r in sent] == sorted(r.at for r in sent)
    assert sent[0].at == 100.0
    p.enter(Phase.SCRIPTS)  # once identified, reports go out at once
    assert [(r.phase, r.done) for r in sent[-2:]] == [(Phase.ENROLL, True), (Phase.SCRIPTS, False)]
