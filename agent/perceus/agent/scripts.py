"""Node scripts on the node: the master's scripts for a state, joined into ONE sh script and run.

1.x piped the concatenated nodescript output into `/bin/sh` as it streamed (1.x ref §5.2, §5.5), so variables one
script sets are seen by the later ones; we keep that by concatenating, but (unlike 1.x) the whole script has
arrived and is written to a file before anything runs (no half-received script is ever executed), stdin stays
the console (00-init's debug shells need it), and the environment the master sent is exported first.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from perceus.errors import BusError
from perceus.protocol.messages import Script, ScriptResult

if TYPE_CHECKING:
    from perceus.agent.bus import BusClient

log = structlog.get_logger("perceus.agent.scripts")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TAIL_LINES = 60
TAIL_BYTES = 4000


def assemble(scripts: Sequence[Script], env: Mapping[str, str], *, state: str = "") -> str:
    """One POSIX sh script: exported environment, then each body in the order given (basename order)."""
    lines = [
        "#!/bin/sh",
        f"# perceus node scripts, state {state or '?'}: " + " ".join(s.name for s in scripts),
    ]
    for key in sorted(env):
        if _NAME.match(key):  # a bad name would be a shell syntax error (or worse): skip it
            lines.append(f"export {key}={shlex.quote(env[key])}")
    for script in scripts:
        lines.append(f"# --- {script.name.replace(chr(10), ' ')}")
        lines.append(script.body.rstrip("\n"))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    """Exit status (negative = killed by that signal, 124 = timed out) and the tail of the output."""

    status: int
    output: str
    duration: float


def run(text: str, *, workdir: Path, cwd: str = "/", timeout: float | None = None, shell: str = "/bin/sh",
        env: Mapping[str, str] | None = None) -> Outcome:  # fmt: skip
    """Write the script to a private file under `workdir`, run it, log each output line (debug level)."""
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="nodescripts-", suffix=".sh", dir=workdir)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    start = time.monotonic()
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        proc = subprocess.Popen(
            [shell, name], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, text=True, errors="replace",
        )  # fmt: skip
        assert proc.stdout is not None
        # A silent, hung script never yields a line, so the deadline is a timer that kills it.
        timer = threading.Timer(timeout, proc.kill) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")  # noqa: PLW2901 - the loop value normalised in place
                tail.append(line)
                log.debug("script_output", line=line)
            status = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        if timeout is not None and status == -9 and time.monotonic() - start >= timeout:
            status = 124
    finally:
        os.unlink(name)
    output = "\n".join(tail)[-TAIL_BYTES:]
    return Outcome(status, output, time.monotonic() - start)


def run_and_report(
    client: BusClient,
    items: Sequence[Script],
    env: Mapping[str, str],
    *,
    state: str,
    node: str,
    boot_id: str,
    workdir: Path,
    timeout: float | None = None,
) -> Outcome:
    """Run one state's node scripts as one sh script and tell the master how it went (stage one and
    provisiond alike); a lost report is logged, never fatal."""
    outcome = run(assemble(items, env, state=state), workdir=workdir, timeout=timeout)
    (log.info if outcome.status == 0 else log.warning)(
        "node_scripts_done", state=state, status=outcome.status, duration_ms=round(outcome.duration * 1000, 1)
    )
    report = ScriptResult(node=node, boot_id=boot_id, state=state, status=outcome.status, output=outcome.output)
    try:
        client.request(report, timeout=5.0)
    except BusError as exc:
        log.warning("script_result_failed", error=str(exc))
    return outcome
