"""The boot-phase state machine: an explicit transition table, timestamps, and `Report`s for the master.

Each phase is reported when it starts (`done=False`) and when it ends (`done=True`, `ok`), so the master can
draw a per-node boot timeline.  Phases before enrollment (boot, drivers, dhcp) happen before the node knows
its NodeID; their reports are queued with their real timestamps and sent once it does.  An illegal transition
is a bug in the flow: it is logged with from/to and raises PhaseError.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from perceus.agent.failures import PhaseError
from perceus.protocol.enums import Phase
from perceus.protocol.messages import Report

log = structlog.get_logger("perceus.agent.phases")

# Retries go back to ENROLL (1.x re-sent `init` after any failure); FAILED is terminal for this boot.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.BOOT: frozenset({Phase.DRIVERS, Phase.DHCP, Phase.ENROLL, Phase.RUNTIME}),
    Phase.DRIVERS: frozenset({Phase.DHCP}),
    Phase.DHCP: frozenset({Phase.ENROLL}),
    Phase.ENROLL: frozenset({Phase.SCRIPTS}),
    Phase.SCRIPTS: frozenset({Phase.CAPSULE, Phase.ENROLL}),
    Phase.CAPSULE: frozenset({Phase.INSTALL, Phase.KEXEC, Phase.ENROLL}),
    Phase.INSTALL: frozenset({Phase.KEXEC, Phase.ENROLL}),
    Phase.KEXEC: frozenset({Phase.ENROLL}),
    Phase.RUNTIME: frozenset(),
    Phase.FAILED: frozenset(),
}
for _phase, _next in TRANSITIONS.items():  # every live phase may fail
    if _phase not in (Phase.FAILED, Phase.RUNTIME):
        TRANSITIONS[_phase] = _next | {Phase.FAILED}
MAX_QUEUED = 64

Send = Callable[[Report], None]


@dataclass
class Step:
    """One phase of this boot: when it started and ended, and how it went."""

    phase: Phase
    start: float
    end: float | None = None
    ok: bool = True
    detail: str = ""


@dataclass
class Phases:
    """Current phase + history of one boot; reports go through `send` once `node` is known."""

    boot_id: str
    clock: Callable[[], float] = time.time
    current: Phase = Phase.BOOT
    history: list[Step] = field(default_factory=list)
    node: str = ""
    send: Send | None = None
    _queue: collections.deque[Report] = field(default_factory=lambda: collections.deque(maxlen=MAX_QUEUED))

    def __post_init__(self) -> None:
        self.history.append(Step(self.current, self.clock()))
        self._report(self.current, self.history[-1].start, done=False)

    def can(self, wanted: Phase) -> bool:
        return wanted in TRANSITIONS[self.current]

    def enter(self, wanted: Phase, detail: str = "") -> None:
        """End the current phase successfully and start `wanted`."""
        self._finish(ok=True, detail=detail)
        self._move(wanted)

    def fail(self, detail: str, *, retry: Phase | None = None) -> None:
        """End the current phase as failed; then go back to `retry` (e.g. ENROLL) or to FAILED."""
        self._finish(ok=False, detail=detail)
        self._move(retry or Phase.FAILED)

    def _finish(self, *, ok: bool, detail: str) -> None:
        step = self.history[-1]
        step.end, step.ok, step.detail = self.clock(), ok, detail
        (log.info if ok else log.warning)(
            "phase_done", phase=step.phase.value, ok=ok, detail=detail,
            duration_ms=round((step.end - step.start) * 1000, 1),
        )  # fmt: skip
        self._report(step.phase, step.end, ok=ok, done=True, detail=detail)

    def _move(self, wanted: Phase) -> None:
        if not self.can(wanted):
            log.error("illegal_phase_transition", current=self.current.value, wanted=wanted.value)
            raise PhaseError(self.current.value, wanted.value)
        self.current = wanted
        self.history.append(Step(wanted, self.clock()))
        log.info("phase_started", phase=wanted.value)
        if wanted is not Phase.FAILED:
            self._report(wanted, self.history[-1].start, done=False)

    def _report(self, phase: Phase, t: float, *, ok: bool = True, done: bool = True, detail: str = "") -> None:
        self._queue.append(Report(node=self.node, boot_id=self.boot_id, phase=phase, at=t, ok=ok, done=done,
                                  detail=detail[:400]))  # fmt: skip
        self.flush()

    def identify(self, node: str, send: Send) -> None:
        """The node now knows its NodeID: send everything queued so far (with its original timestamps)."""
        self.node, self.send = node, send
        self.flush()

    def flush(self) -> None:
        if not self.node or self.send is None:
            return
        while self._queue:
            report = self._queue.popleft()
            if not report.node:
                report = dataclasses.replace(report, node=self.node)
            self.send(report)
