"""Integration fixtures: a real perceus-bus process on 127.0.0.1 with its own config/state dirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.config import Paths


@pytest.fixture
def bus(paths: Paths) -> Iterator[RunningBus]:
    running = start_local_bus(paths)
    yield running
    running.stop()
