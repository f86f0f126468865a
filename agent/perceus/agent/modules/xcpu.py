"""xcpu on the node: run a command the master published (`exec`) and answer `exec_result`.

Commands run without a shell (argv as given), with a timeout (status 124 like coreutils `timeout`; 127
when the program does not exist), output capped so one chatty command cannot blow the frame limit.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable

import structlog

from perceus.agent.bus import BusClient, CurveHook, Subscriber, wait_any
from perceus.errors import BusError
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Ack, CheckIn, Exec, ExecResult, Sync

log = structlog.get_logger("perceus.agent.modules")

MAX_OUTPUT = 64 * 1024


def run(msg: Exec, node: str, *, cwd: str = "/") -> ExecResult:
    start = time.monotonic()
    try:
        done = subprocess.run(list(msg.argv), capture_output=True, timeout=max(0.1, msg.timeout), cwd=cwd,
                              stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        status, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        status = 124
        out = exc.stdout or b""
        err = (exc.stderr or b"") + f"\nperceus: timed out after {msg.timeout:g}s\n".encode()
    except FileNotFoundError:
        status, out, err = 127, b"", f"perceus: {msg.argv[0]}: command not found\n".encode()
    except OSError as exc:
        status, out, err = 126, b"", f"perceus: {msg.argv[0]}: {exc.strerror}\n".encode()
    log.info("exec_done", job=msg.job, command=msg.argv[0], status=status,
             duration_ms=round((time.monotonic() - start) * 1000, 1))  # fmt: skip
    return ExecResult(node=node, job=msg.job, status=status, stdout=out[-MAX_OUTPUT:], stderr=err[-MAX_OUTPUT:])


def serve(
    client: BusClient,
    events: str,
    node: str,
    boot_id: str,
    interval: float,
    *,
    curve: CurveHook | None = None,
    rng: random.Random | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Stage one with xcpu active: no capsule; check in (jittered) and run published commands until stopped.

    1.x's XCPU kept nodes in a minimal environment that the master drove; this is that intent over the bus.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter and ids, never a secret
    sub = Subscriber(events, ["exec", "sync"], curve=curve)
    log.info("xcpu_serving", node=node, events=events)
    seq = 0
    next_at = time.monotonic() + rng.uniform(0, interval)
    try:
        while not stop():
            left = next_at - time.monotonic()
            if left <= 0:
                seq += 1
                try:
                    reply = client.request(
                        CheckIn(node=node, state="ready", boot_id=boot_id, seq=seq, stage=Stage.STAGE1), timeout=10.0
                    )
                    if isinstance(reply, Ack):
                        interval = max(1.0, reply.interval)
                except BusError as exc:
                    log.warning("checkin_failed", error=str(exc))
                next_at = time.monotonic() + interval * rng.uniform(0.9, 1.1)
                continue
            msg, pushed = wait_any(client, sub, min(left, 1.0))
            if isinstance(msg, Exec) and pushed and node in msg.nodes:  # commands come over our own session only
                try:
                    client.request(run(msg, node), timeout=5.0)
                except BusError as exc:
                    log.warning("exec_result_failed", job=msg.job, error=str(exc))
            elif isinstance(msg, Sync) and (not msg.nodes or node in msg.nodes):
                next_at = time.monotonic()
    finally:
        sub.close()
