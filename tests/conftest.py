"""Shared fixtures: isolated Perceus config/state directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.master.config import Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    p.ensure()
    return p
