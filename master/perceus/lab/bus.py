"""perceus-bus (and the perceus CLI) for labs, tests, benchmarks and the demo: the one way to start a bus.

``start_bus`` runs it inside a lab's namespace on the bridge; ``start_local_bus`` runs it on 127.0.0.1 (tests
and benchmarks, never a dnsmasq on the host's interfaces).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import perceus
from perceus.lab.lab import Lab
from perceus.lab.netns import LabError, exec_prefix
from perceus.lab.procs import ManagedProcess
from perceus.master.bus.control import ENDPOINTS_FILE, read_endpoints
from perceus.master.config import Paths

_CLI = "import sys; from perceus.master.cli.main import main; sys.exit(main())"


def namespace_roots() -> str:
    """Every ``perceus`` namespace root (agent/, master/, …) joined for a PYTHONPATH."""
    return os.pathsep.join(str(Path(p).parent) for p in perceus.__path__)


def python_env() -> dict[str, str]:
    """This process's environment plus a PYTHONPATH naming every ``perceus`` namespace root.

    So ``python -m perceus.master.busd`` works from a source checkout as from an install.
    """
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([namespace_roots(), *([old] if old else [])])}


def busd_argv(paths: Paths, bind: str, events: str, *extra: str) -> list[str]:
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    return [sys.executable, "-m", "perceus.master.busd", *dirs, "--bind", bind, "--events", events, "--foreground",
            *extra]  # fmt: skip


def wait_listening(paths: Paths, alive: Callable[[], bool], log: Path | None, timeout: float) -> tuple[str, str]:
    """The (router, events) endpoints once the bus has written them; LabError if it exits or times out."""
    deadline = time.monotonic() + timeout
    while (endpoints := read_endpoints(paths.run)) is None:
        if not alive():
            raise LabError(f"perceus-bus exited; see {log}")
        if time.monotonic() > deadline:
            raise LabError(f"perceus-bus did not listen within {timeout} s; see {log}")
        time.sleep(0.05)
    return endpoints


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


def perceus_cli(
    paths: Paths, *args: str, timeout: float = 120, netns: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``perceus`` CLI against ``paths`` (import capsules, set defaults, talk to a bus); inside network
    namespace ``netns`` when given (a lab's BMCs listen on the namespace's loopback)."""
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    # The directories go first: a `--` in args (node exec) ends option parsing.
    argv = [*(exec_prefix(netns) if netns else []), sys.executable, "-c", _CLI, *dirs, *args]
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=python_env(), timeout=timeout, check=False
    )


def start_bus(lab: Lab, paths: Paths, *, port: int = 0, timeout: float = 30) -> LabBus:
    """Start perceus-bus in ``lab``'s namespace on the bridge address; wait until it is listening.

    Port 0 lets the bus pick a free port (some well-known ports are taken on test hosts);
    it writes the resolved endpoints to ``<state>/run/bus.endpoint``.
    """
    paths.ensure()
    (paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)
    argv = busd_argv(paths, f"tcp://{lab.gateway}:{port}", f"tcp://{lab.gateway}:0")
    proc = lab.spawn("perceus-bus", argv, env=python_env())
    return LabBus(paths, proc, *wait_listening(paths, proc.running, proc.log, timeout))


@dataclass
class RunningBus:
    """A perceus-bus subprocess on 127.0.0.1 (tests, benchmarks) and where to reach it."""

    paths: Paths
    proc: subprocess.Popen[bytes]
    endpoint: str
    events: str
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_local_bus(
    paths: Paths, *extra: str, bind: str = "tcp://127.0.0.1:0", security: str = "none", timeout: float = 20
) -> RunningBus:
    """perceus-bus on loopback with ``manage dnsmasq = no`` (never a dnsmasq on the host's real interfaces).

    ``security``: "none" (plaintext; tests of other features) or "curve" (the product default; benchmarks).
    """
    paths.ensure()
    conf = paths.perceus_conf.read_text()
    if "manage dnsmasq" not in conf:
        paths.perceus_conf.write_text(conf + "\nmanage dnsmasq = no\n")
    (paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)
    log = paths.logs / f"bus-{time.monotonic_ns()}.log"
    argv = busd_argv(paths, bind, "tcp://127.0.0.1:0", "--security", security, *extra)
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=python_env())
    try:
        endpoints = wait_listening(paths, lambda: proc.poll() is None, log, timeout)
    except LabError:
        proc.kill()
        proc.wait()
        raise LabError(f"perceus-bus did not start: {log.read_text(errors='replace')[-2000:]}") from None
    return RunningBus(paths, proc, *endpoints, log)
