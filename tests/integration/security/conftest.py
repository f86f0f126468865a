"""Security fixtures: a real perceus-bus with CurveZMQ on, and agent-side trust in its keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from perceus.agent import security as node_security
from perceus.agent.bus import BusClient, CurveClient
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys

MAC = "52:54:00:AA:00:01"


def set_conf(paths: Paths, **values: str) -> None:
    """Append `key = value` lines to perceus.conf (the last occurrence of a key wins)."""
    with paths.perceus_conf.open("a") as fh:
        for key, value in values.items():
            fh.write(f"{key.replace('_', ' ')} = {value}\n")


def cli(paths: Paths, *argv: str) -> int:
    from perceus.master.cli.main import main

    return main(["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir), "-y", *argv])


@pytest.fixture
def secure_bus(paths: Paths) -> Iterator[Callable[..., RunningBus]]:
    started: list[RunningBus] = []

    def start(policy: str = "open", **conf: str) -> RunningBus:
        set_conf(paths, enrollment_policy=policy, **conf)
        bus = start_local_bus(paths, security="curve")
        started.append(bus)
        return bus

    yield start
    for bus in started:
        bus.stop()


def master_pub(paths: Paths) -> bytes:
    loaded = master_keys.load(paths)
    assert loaded is not None
    return loaded.bus_public


def client(bus: RunningBus, key: bytes | None = None) -> BusClient:
    return BusClient([bus.endpoint], curve=CurveClient(key or master_pub(bus.paths)))


@pytest.fixture
def trust_master(paths: Paths) -> Iterator[Callable[[], node_security.Trust]]:
    """Make the in-process agent trust this test's master (as stage one would from its image)."""

    def use() -> node_security.Trust:
        loaded = master_keys.load(paths)
        assert loaded is not None
        t = node_security.Trust(loaded.bus_public, loaded.sign_public, "test")
        node_security.use(t)
        return t

    yield use
    node_security.use(None)
