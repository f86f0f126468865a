"""Boot-storm pacing: slots granted first come first served, the queue's head keeps a freed slot, releases,
idle and silent nodes, ETA from measured transfers, settings from perceus.conf, and the `wait` frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.errors import ConfigError
from perceus.master.capsule.pacing import IDLE_RELEASE, QUEUE_GRACE, Pacer, PacingSettings
from perceus.protocol import codec
from perceus.protocol.enums import WaitReason
from perceus.protocol.messages import Wait

GOLDEN = Path(__file__).parents[2] / "data" / "wire" / "v1"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def pacer(slots: int = 2) -> tuple[Pacer, Clock]:
    clock = Clock()
    return Pacer(PacingSettings(slots=slots), clock=clock), clock


def test_slots_then_queue_positions() -> None:
    p, _ = pacer(2)
    assert p.admit("a") is None and p.admit("b") is None
    c, d = p.admit("c"), p.admit("d")
    assert c is not None and (c.position, c.queue) == (1, 1)
    assert d is not None and (d.position, d.queue) == (2, 2)
    again = p.admit("d")
    assert again is not None and again.position == 2  # asking again keeps the place
    assert p.admit("a") is None  # a slot holder is never deferred


def test_freed_slot_goes_to_the_head_not_to_a_newcomer() -> None:
    p, clock = pacer(1)
    assert p.admit("a") is None
    assert p.admit("b") is not None
    clock.t += 3
    p.release("a", why="done")
    late = p.admit("z")
    assert late is not None and late.position == 2  # z came after b
    assert p.admit("b") is None
    assert p.active.keys() == {"b"}


def test_eta_from_measured_transfers() -> None:
    p, clock = pacer(2)
    p.admit("a")
    p.admit("b")
    assert p.admit("c") is not None and p.eta(1) == 0.0  # nothing measured yet
    clock.t += 4.0
    p.release("a", why="done")
    p.release("b", why="done")
    assert p.eta(4) == pytest.approx(4 * 4.0 / 2)


def test_idle_slot_holder_is_released_and_silent_waiter_leaves() -> None:
    p, clock = pacer(1)
    p.admit("a")
    w = p.admit("b")
    assert w is not None
    clock.t += max(IDLE_RELEASE, QUEUE_GRACE + 1.0) + 1  # a died mid-fetch and b stopped asking
    third = p.admit("c")
    assert third is None  # a's slot was taken back, b left the queue
    assert p.active.keys() == {"c"} and not p.queue


def test_disabled_pacing_never_defers() -> None:
    p = Pacer(PacingSettings(enabled=False, slots=1))
    assert all(p.admit(n) is None for n in "abcdef")


def test_settings_from_perceus_conf() -> None:
    s = PacingSettings.from_config({"capsule uplink": ["200mbit"], "capsule node rate": ["20mbit"]})
    assert s.enabled and s.slots == 11  # ceil(200/20) + 1 to keep the pipe full while a slot changes hands
    assert PacingSettings.from_config({"capsule slots": ["4"]}).slots == 4
    assert not PacingSettings.from_config({"capsule pacing": ["no"]}).enabled
    assert PacingSettings.from_config({}).slots == 11  # 10 Gbit/s master, 1 Gbit/s nodes
    with pytest.raises(ConfigError, match="capsule uplink"):
        PacingSettings.from_config({"capsule uplink": ["fast"]})
    with pytest.raises(ConfigError, match="capsule slots"):
        PacingSettings.from_config({"capsule slots": ["0"]})


# tests/data/wire/v1/wait_busy.msgpack was encoded from this once and is never rewritten.
BUSY = Wait(rid=12, reason=WaitReason.BUSY, retry_after=0.5, node="52:54:00:12:34:56", position=3, queue=40,
            eta=12.0, message="capsule transfer queued: position 3 of 40, about 12 s")  # fmt: skip


def test_busy_wait_golden_frame_decodes() -> None:
    assert codec.decode((GOLDEN / "wait_busy.msgpack").read_bytes()) == BUSY


def test_old_wait_frame_still_decodes_without_queue_fields() -> None:
    old = codec.decode((GOLDEN / "wait.msgpack").read_bytes())
    assert isinstance(old, Wait) and (old.position, old.queue, old.eta) == (0, 0, 0.0)
