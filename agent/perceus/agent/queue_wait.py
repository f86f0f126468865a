"""A node waiting for its capsule-transfer slot (boot-storm pacing): say where it stands, decide when to ask.

The master answers `get_manifest` / `get_chunks` with `wait` (reason `busy`) while the node has no slot; the
reply carries the node's queue position, the queue's length and an estimate (master/…/capsule/pacing.py).
Waiting is not a failure: no attempt is counted, nothing is fetched, the console shows the position.
"""

from __future__ import annotations

import random
import time

import structlog

from perceus.protocol.messages import Wait

log = structlog.get_logger("perceus.agent")

_last: dict[str, float] = {"position": -1.0, "t": 0.0}


def note(reply: Wait, rng: random.Random | None = None) -> float:
    """Log the queue position (when it changes, or every 5 s); returns how long to wait before asking again."""
    now = time.monotonic()
    if reply.position != _last["position"] or now - _last["t"] >= 5.0:
        _last["position"], _last["t"] = float(reply.position), now
        log.info("capsule_queued", position=reply.position, of=reply.queue, eta_s=round(reply.eta, 1),
                 retry_in=round(reply.retry_after, 1), message=reply.message)  # fmt: skip
    jitter = (rng or random).uniform(0.9, 1.1)
    return max(0.1, min(60.0, reply.retry_after * jitter))
