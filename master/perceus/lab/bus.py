"""perceus-bus (and the perceus CLI) for a lab: the master daemon inside the namespace, bound to the bridge."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import perceus
from perceus.lab.lab import Lab
from perceus.lab.netns import LabError
from perceus.lab.procs import ManagedProcess
from perceus.master.bus.control import ENDPOINTS_FILE, read_endpoints
from perceus.master.config import Paths

_CLI = "import sys; from perceus.master.cli.main import main; sys.exit(main())"


def python_env() -> dict[str, str]:
    """This process's environment plus a PYTHONPATH naming every ``perceus`` namespace root.

    So ``python -m perceus.master.busd`` works from a source checkout as from an install.
    """
    roots = [str(Path(p).parent) for p in perceus.__path__]
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*roots, *([old] if old else [])])}


@dataclass
class LabBus:
    """A running perceus-bus in a lab and the config/state directories it uses."""

    paths: Paths
    process: ManagedProcess
    endpoint: str
    events: str

    @property
    def host_port(self) -> str:
        """``HOST:PORT`` for a node's ``perceus.master=``."""
        return self.endpoint.removeprefix("tcp://")

    @property
    def bus_public_hex(self) -> str | None:
        """The bus's CurveZMQ public key (hex), when the master has one (``<config>/keys/bus.pub``)."""
        path = self.paths.config_dir / "keys" / "bus.pub"
        return path.read_text().strip() if path.exists() else None

    @property
    def kernel_args(self) -> str:
        """What a node's command line needs to reach this bus: ``perceus.master=`` (+ ``perceus.masterkey=``)."""
        key = self.bus_public_hex
        return f"perceus.master={self.host_port}" + (f" perceus.masterkey={key}" if key else "")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the real ``perceus`` CLI on the host against this bus's config and state."""
        return perceus_cli(self.paths, *args, timeout=timeout)

    def log_tail(self, chars: int = 2000) -> str:
        log = self.process.log
        return log.read_text(errors="replace")[-chars:] if log and log.exists() else ""


def perceus_cli(paths: Paths, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The ``perceus`` CLI against ``paths`` before any bus runs (import capsules, set defaults)."""
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    # The directories go first: a `--` in args (node exec) ends option parsing.
    argv = [sys.executable, "-c", _CLI, *dirs, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=python_env(), timeout=timeout)


def start_bus(lab: Lab, paths: Paths, *, port: int = 0, timeout: float = 30) -> LabBus:
    """Start perceus-bus in ``lab``'s namespace on the bridge address; wait until it is listening.

    Port 0 lets the bus pick a free port (some well-known ports are taken on test hosts);
    it writes the resolved endpoints to ``<state>/run/bus.endpoint``.
    """
    paths.ensure()
    (paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "perceus.master.busd",
        "--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir),
        "--bind", f"tcp://{lab.gateway}:{port}", "--events", f"tcp://{lab.gateway}:0", "--foreground",
    ]  # fmt: skip
    proc = lab.spawn("perceus-bus", argv, env=python_env())
    deadline = time.monotonic() + timeout
    while (endpoints := read_endpoints(paths.run)) is None:
        if not proc.running():
            raise LabError(f"perceus-bus exited {proc.popen.returncode}; see {proc.log}")
        if time.monotonic() > deadline:
            raise LabError(f"perceus-bus did not listen within {timeout} s; see {proc.log}")
        time.sleep(0.05)
    return LabBus(paths, proc, *endpoints)
