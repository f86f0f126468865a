"""Integration fixtures: a real perceus-bus process on 127.0.0.1 with its own config/state dirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.helpers.bus_process import RunningBus, start_bus

from perceus.master.config import Paths


@pytest.fixture
def bus(paths: Paths) -> Iterator[RunningBus]:
    running = start_bus(paths)
    yield running
    running.stop()
