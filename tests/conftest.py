"""Shared fixtures: isolated Perceus config/state directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.master.config import Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    p.ensure()
    isolate(p)
    return p


def isolate(paths: Paths) -> None:
    """Tests never manage a dnsmasq on the host's real interfaces: only tests that built their own
    namespace turn it on, explicitly."""
    text = paths.perceus_conf.read_text()
    if "manage dnsmasq = no" not in text:
        paths.perceus_conf.write_text(text + "\n# tests: never touch the host's interfaces\nmanage dnsmasq = no\n")
