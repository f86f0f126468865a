"""Helpers for agent integration tests: run `python -m perceus.agent` as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from perceus.lab.bus import namespace_roots


def agent_argv(*args: str) -> list[str]:
    return [sys.executable, "-W", "error", "-m", "perceus.agent", *args]


def agent_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": namespace_roots(), **extra}


def host_port(endpoint: str) -> str:
    """`tcp://127.0.0.1:1234` → `127.0.0.1:1234` (the agent's cmdline form)."""
    return endpoint.removeprefix("tcp://")


def run_agent(*args: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(agent_argv(*args), env=agent_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)  # fmt: skip
