"""`perceus init --service`: the perceus-bus unit is written and enabled (systemctl --root: offline, real)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from perceus.master import service_unit
from perceus.master.config import Paths


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl is not installed")
def test_unit_written_and_enabled_in_a_root(paths: Paths, tmp_path: Path) -> None:
    root = tmp_path / "root"
    unit, _ = service_unit.install(paths, root, start=False)
    assert unit == root / "etc/systemd/system/perceus-bus.service"
    text = unit.read_text()
    assert f"Environment=PERCEUS_CONFIG_DIR={paths.config_dir} PERCEUS_STATE_DIR={paths.state_dir}" in text
    assert "--foreground" in text.split("ExecStart=")[1].splitlines()[0]
    wanted = root / "etc/systemd/system/multi-user.target.wants/perceus-bus.service"
    assert wanted.is_symlink()
    again, _ = service_unit.install(paths, root, start=False)
    assert again is None  # an existing unit (perhaps edited by the admin) is kept
