"""Multi-master fixtures: one throwaway PostgreSQL database shared by real perceus-bus processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.integration.store.conftest import PgCluster, _free_port, pg_cluster

from perceus.lab.bus import RunningBus, namespace_roots, start_local_bus
from perceus.master.config import Paths

__all__ = ["pg_cluster"]  # the session's PostgreSQL cluster, shared with the store tests' fixture

AGENTS = Path(__file__).with_name("agents.py")
ROOT = Path(__file__).resolve().parents[3]


def write_config(paths: Paths, url: str) -> None:
    paths.ensure()
    # Plaintext and no per-IP rate limit: every simulated agent comes from 127.0.0.1 (security has its own tests).
    paths.perceus_conf.write_text(
        f"database type = {url}\ncheckin interval = 60\nbus security = none\nbus rate limit = 0\n"
    )
    paths.defaults_conf.write_text("Node Name = n####\nGroup Name = cluster\n")


@dataclass
class Master:
    """One perceus-bus on a fixed port (so a restarted master is reachable at the address agents know)."""

    paths: Paths
    port: int
    bus: RunningBus | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RunningBus:
        self.bus = start_local_bus(self.paths, bind=f"tcp://{self.address}")
        return self.bus

    def kill(self) -> None:
        assert self.bus is not None
        self.bus.proc.send_signal(signal.SIGKILL)
        self.bus.proc.wait()

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.stop()


@dataclass
class Masters:
    url: str
    masters: list[Master] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in self.masters]


@pytest.fixture
def shared_db(pg_cluster: PgCluster) -> Iterator[str]:
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def three_masters(shared_db: str, tmp_path: Path) -> Iterator[Masters]:
    group = Masters(shared_db)
    for i in range(3):
        paths = Paths(tmp_path / f"m{i}" / "etc", tmp_path / f"m{i}" / "var")
        write_config(paths, shared_db)
        group.masters.append(Master(paths, _free_port()))
    try:
        for m in group.masters:
            m.start()
        yield group
    finally:
        for m in group.masters:
            m.stop()


def spawn_agents(
    addresses: list[str],
    *,
    first: int,
    count: int,
    offset: int,
    start_at: float,
    duration: float,
    interval: float,
    timeout: float,
    hello_only: bool = False,
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([namespace_roots(), str(ROOT)])}
    args = [",".join(addresses), first, count, offset, start_at, duration, interval, timeout]
    return subprocess.Popen(
        [sys.executable, str(AGENTS), *map(str, args), *(["hello-only"] if hello_only else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
