"""The pure part of a rolling reprovision: batch sizes, and what each node's bus track means (the health gate).

`perceus node reprovision` (cli/reprovision.py) feeds `judge` what perceus-bus saw of a node (tracker.py's
track) and acts on the verdict: wait, fall back to the BMC, or record the node as ready or failed.  A batch
advances only when every node in it is READY: back in provisiond after a new stage-one boot, on the manifest
the master assigns it now (`expected`), with the target capsule when `--vnfs` named one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from perceus.errors import UsageError

T = TypeVar("T")
_BATCH = re.compile(r"^([1-9][0-9]{0,6})(%?)$")


def batch_size(spec: str, total: int) -> int:
    """`--batch N` (nodes) or `N%` (of `total`, rounded up, at least one)."""
    m = _BATCH.match(spec.strip())
    if m is None:
        raise UsageError(f"--batch {spec!r}: expected a node count (10) or a percentage (10%)")
    n = int(m.group(1))
    if m.group(2):
        if n > 100:
            raise UsageError(f"--batch {spec!r}: a percentage is at most 100%")
        return max(1, math.ceil(total * n / 100))
    return n


def split(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive batches of `size` (the last one may be shorter)."""
    if size < 1:
        raise UsageError("a batch holds at least one node")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Verdict(StrEnum):
    WAIT = "wait"  # still on its way (acknowledged, rebooting, or power-cycled and booting)
    POWER = "power"  # no acknowledgement (or a refusal): power-cycle it through its BMC
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    why: str = ""


def stage(track: Mapping[str, Any]) -> str:
    """Where a node is, in words for the progress line."""
    if track.get("ready"):
        return "ready"
    if track.get("stage1"):
        return "in stage one"
    if track.get("acked"):
        return "acknowledged" if track.get("ack_ok") else "refused"
    return "waiting for acknowledgement" if track.get("sent") else "not sent"


def judge(
    track: Mapping[str, Any],
    *,
    now: float,
    started: float,
    ack_timeout: float,
    boot_timeout: float,
    timeout: float,
    cycled: bool,
    vnfs: str = "",
) -> Judgement:
    """The verdict on one node (times: the master's clock for the track, `now`/`started` the same clock).

    `ack_timeout`: for the acknowledgement; `boot_timeout`: from it to the stage-one hello (a kexec that hung);
    `cycled`: its BMC already power-cycled it (then only READY or the overall `timeout` remain)."""
    if track.get("ready"):
        expected, got = str(track.get("expected", "")), str(track.get("manifest", ""))
        if vnfs and track.get("vnfs") != vnfs:
            return Judgement(Verdict.FAILED, f"its capsule is now {track.get('vnfs')!r}, not {vnfs!r}")
        if expected and got != expected:
            return Judgement(Verdict.FAILED, f"came back on manifest {got[:12]}, not the assigned {expected[:12]}")
        return Judgement(Verdict.READY)
    if now - started > timeout:
        last = f" (last seen: {stage(track)}" + (f"; failed phase {track['failed']}" if track.get("failed") else "")
        return Judgement(Verdict.FAILED, f"not ready within {timeout:g} s{last})")
    if cycled or track.get("stage1"):
        return Judgement(Verdict.WAIT)
    if not track.get("sent"):
        return Judgement(Verdict.POWER, str(track.get("problem") or "not sent"))
    if track.get("acked") and not track.get("ack_ok"):
        return Judgement(Verdict.POWER, f"provisiond refused: {track.get('detail', '')}")
    if not track.get("acked") and now - float(track["sent"]) > ack_timeout:
        return Judgement(Verdict.POWER, f"no acknowledgement within {ack_timeout:g} s")
    if track.get("acked") and now - float(track["acked"]) > boot_timeout:
        return Judgement(Verdict.POWER, f"acknowledged, but no stage-one hello within {boot_timeout:g} s")
    return Judgement(Verdict.WAIT)
