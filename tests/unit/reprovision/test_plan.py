"""The rolling reprovision's pure rules: batch sizes and the health gate's verdict on one node's track."""

from __future__ import annotations

import pytest

from perceus.errors import UsageError
from perceus.master.reprovision.plan import Verdict, batch_size, judge, split, stage

T0 = 1_000_000.0
GATE = {"ack_timeout": 30.0, "boot_timeout": 120.0, "timeout": 600.0}


def _judge(track: dict[str, object], now: float, *, cycled: bool = False, vnfs: str = "") -> tuple[Verdict, str]:
    j = judge(track, now=now, started=T0, cycled=cycled, vnfs=vnfs, **GATE)
    return j.verdict, j.why


@pytest.mark.parametrize(
    ("spec", "total", "size"),
    [("1", 10, 1), ("4", 10, 4), ("25", 3, 25), ("10%", 10, 1), ("10%", 25, 3), ("50%", 3, 2), ("100%", 7, 7),
     ("1%", 1, 1)],
)  # fmt: skip
def test_batch_size_counts_or_rounds_a_percentage_up(spec: str, total: int, size: int) -> None:
    assert batch_size(spec, total) == size


@pytest.mark.parametrize("spec", ["0", "0%", "101%", "-1", "ten", "10 %", "", "1.5"])
def test_bad_batch_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError, match="--batch"):
        batch_size(spec, 10)


def test_split_keeps_order_and_a_short_last_batch() -> None:
    assert split(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert split(["a"], 10) == [["a"]]
    with pytest.raises(UsageError):
        split(["a"], 0)


def test_a_node_back_in_provisiond_on_the_assigned_manifest_is_ready() -> None:
    track = {"sent": T0, "acked": T0 + 2, "ack_ok": True, "stage1": T0 + 10, "ready": T0 + 40, "manifest": "m2",
             "expected": "m2", "vnfs": "mini2"}  # fmt: skip
    assert _judge(track, T0 + 41, vnfs="mini2") == (Verdict.READY, "")
    assert stage(track) == "ready"


def test_ready_on_another_manifest_or_capsule_fails_the_gate() -> None:
    track = {"sent": T0, "stage1": T0 + 10, "ready": T0 + 40, "manifest": "m1", "expected": "m2", "vnfs": "mini2"}
    verdict, why = _judge(track, T0 + 41)
    assert verdict is Verdict.FAILED and "manifest m1" in why
    track["manifest"] = "m2"
    verdict, why = _judge(track, T0 + 41, vnfs="other")
    assert verdict is Verdict.FAILED and "'mini2', not 'other'" in why


def test_waiting_for_the_acknowledgement_then_the_bmc() -> None:
    track: dict[str, object] = {"sent": T0}
    assert _judge(track, T0 + 29)[0] is Verdict.WAIT
    assert stage(track) == "waiting for acknowledgement"
    assert _judge(track, T0 + 31) == (Verdict.POWER, "no acknowledgement within 30 s")


def test_a_refusal_goes_to_the_bmc_at_once_and_an_unsent_node_too() -> None:
    verdict, why = _judge({"sent": T0, "acked": T0 + 1, "ack_ok": False, "detail": "SHA-256 differs"}, T0 + 1)
    assert verdict is Verdict.POWER and why == "provisiond refused: SHA-256 differs"
    assert _judge({"sent": 0.0, "problem": "no session"}, T0) == (Verdict.POWER, "no session")


def test_an_acknowledged_kexec_that_never_shows_stage_one_goes_to_the_bmc() -> None:
    track = {"sent": T0, "acked": T0 + 2, "ack_ok": True}
    assert _judge(track, T0 + 100)[0] is Verdict.WAIT
    assert _judge(track, T0 + 123) == (Verdict.POWER, "acknowledged, but no stage-one hello within 120 s")


def test_after_stage_one_or_a_power_cycle_only_ready_or_the_deadline_remain() -> None:
    assert _judge({"sent": T0, "acked": T0 + 2, "ack_ok": True, "stage1": T0 + 9}, T0 + 500)[0] is Verdict.WAIT
    assert _judge({"sent": T0}, T0 + 500, cycled=True)[0] is Verdict.WAIT
    verdict, why = _judge({"sent": T0, "stage1": T0 + 9, "failed": "capsule: no space"}, T0 + 601)
    assert verdict is Verdict.FAILED
    assert why == "not ready within 600 s (last seen: in stage one; failed phase capsule: no space)"
