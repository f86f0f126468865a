"""Stopping the servers perceus-bus supervises (dnsmasq, ganesha): our own child, or one left behind.

A server left by a perceus-bus that died without stopping it (SIGKILL, OOM) runs in its own session, so it
outlives its parent and would keep its ports with an old config.  Only a live process of that program whose
command line names our config file is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def stop_stale(pidfile: Path, program: bytes, conf_word: bytes, grace: float) -> int | None:
    """SIGTERM (SIGKILL after `grace` s) the process `pidfile` names when it is `program` started with
    `conf_word` among its arguments; its pid when one was stopped, else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    if conf_word not in argv or not argv[0].endswith(program):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + grace
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    return pid


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM our child, SIGKILL after `timeout` s; reaped either way."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
