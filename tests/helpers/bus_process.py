"""Start and stop a real perceus-bus process on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from perceus.master.bus.control import ENDPOINTS_FILE, read_endpoints
from perceus.master.config import Paths

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(str(ROOT / d) for d in ("agent", "master", "stage1", "contrib/importers"))


@dataclass
class RunningBus:
    """A perceus-bus subprocess and where to reach it."""

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


def start_bus(paths: Paths, *extra: str, bind: str = "tcp://127.0.0.1:0", security: str = "none") -> RunningBus:
    """`security`: "none" (plaintext clients, the default for tests of other features) or "curve"."""
    paths.ensure()
    conf = paths.perceus_conf.read_text()
    if "manage dnsmasq" not in conf:  # never a dnsmasq on the host's real interfaces from a test or bench
        paths.perceus_conf.write_text(conf + "\nmanage dnsmasq = no\n")
    (paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)
    log = paths.logs / f"bus-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perceus.master.busd",
                "--config-dir",
                str(paths.config_dir),
                "--state-dir",
                str(paths.state_dir),
                "--bind",
                bind,
                "--events",
                "tcp://127.0.0.1:0",
                "--foreground",
                "--security",
                security,
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        endpoints = read_endpoints(paths.run)
        if endpoints is not None:
            return RunningBus(paths, proc, *endpoints, log)
        if proc.poll() is not None:
            raise RuntimeError(f"perceus-bus exited {proc.returncode}: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"perceus-bus did not start: {log.read_text()}")
