"""Issue 4 (c): stage one fetches a capsule from perceus-bus and kexecs into it; the payload's marker appears."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab
from perceus.lab.bus import LabBus, perceus_cli
from perceus.master.config import Paths
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm


@pytest.fixture
def bus_config(lab_paths: Paths, marker_rootfs: Path, stage1_image: BuildResult) -> None:
    """Import the marker payload as capsule "marker" and make it the default for new nodes."""
    result = perceus_cli(
        lab_paths, "vnfs", "import", str(marker_rootfs), "--name", "marker", "--kernel", str(stage1_image.kernel),
        "--console", "ttyS0", "--kernel-args", "quiet panic=-1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    conf = lab_paths.defaults_conf.read_text()
    lab_paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = marker", conf))


def test_stage1_kexecs_into_the_capsule(
    lab: Lab, lab_bus: LabBus, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {lab_bus.kernel_args} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append))
    welcomed = node.wait_for(r"node_welcomed .*vnfs=marker", 150)
    record_time("welcomed with capsule", welcomed.t)
    fetched = node.wait_for(r"capsule_fetched capsule=marker", 60)
    record_time("capsule fetched", fetched.t)
    loaded = node.wait_for(r"kexec_loaded", 60)
    record_time("kexec loaded", loaded.t)
    marker = node.wait_for(r"^perceus-test-payload-ok cmdline: ", 90)
    record_time("payload kernel ran (marker)", marker.t)
    # The runtime gets the node identity and the lease on its command line (no second DHCP).
    assert f"perceus.node={node.mac}" in marker.text.lower()
    assert "perceus.net=10.77.0." in marker.text
    assert node.wait_exit(60) == 0
