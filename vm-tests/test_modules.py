"""Issue 7: modules on a booted QEMU node — a modprobe entry loads a module in stage one; a user added on the
master reaches the running node after `perceus node sync` (checked with `perceus node exec`, xcpu in ready).

The capsule is the stage-one image imported as a capsule (as in test_capsule_boot): its runtime agent is
provisiond, writing the RAM root's /etc/passwd.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, python_env
from perceus.master.config import Paths
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

ALICE = "alice:x:2001:2001:Alice:/home/alice:/bin/sh\n"
BOB = "bob:x:2002:2002:Bob:/home/bob:/bin/sh\n"


@pytest.fixture
def bus_config(lab_paths: Paths, stage1_image: BuildResult) -> None:
    defaults = lab_paths.defaults_conf.read_text()
    lab_paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = mini", defaults))
    imported = perceus_cli(lab_paths, "vnfs", "import", str(stage1_image.initrd), "--kernel",
                           str(stage1_image.kernel), "--name", "mini", timeout=600)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    for argv in (("passwdfile", "ready/all"), ("xcpu", "ready/all"), ("modprobe", "init/all")):
        done = perceus_cli(lab_paths, "module", "activate", *argv)
        assert done.returncode == 0, done.stderr
    modules = lab_paths.config_dir / "modules"
    (modules / "modprobe").write_text("all: nvme\n")
    (modules / "passwdfile" / "all").write_text(ALICE)


def test_modprobe_in_stage_one_and_user_sync_after_node_sync(
    lab: Lab, lab_bus: LabBus, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    lab.start_dnsmasq()
    events = lab_bus.events.removeprefix("tcp://")
    append = f"console=ttyS0 quiet panic=-1 {lab_bus.kernel_args} perceus.events={events} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    try:
        loaded = node.wait_for(r"module_applied module=modprobe kind=load result='loaded nvme'", 300)
        record_time("modprobe module applied in stage one", loaded.t)
        kexec = node.wait_for(r"kexec_started", 300)
        first = node.wait_for(r"module_applied module=passwdfile kind=passwd", 300, start=kexec.index)
        record_time("passwdfile applied at provisiond start", first.t)
    except SerialTimeout:
        if not lab_bus.process.running():
            pytest.fail(f"perceus-bus died: {lab_bus.log_tail()}")
        raise
    (lab_bus.paths.config_dir / "modules" / "passwdfile" / "all").write_text(ALICE + BOB)
    time.sleep(1.5)  # the master re-stats module files at most once per second
    t0 = time.monotonic()
    synced = lab_bus.cli("node", "sync", "*")
    assert synced.returncode == 0, synced.stderr
    node.wait_for(r"sync_requested", 60, start=first.index)
    node.wait_for(r"module_applied module=passwdfile kind=passwd result=\"written 3 entries", 60, start=first.index)
    record_time("user change reached the node after node sync", time.monotonic() - t0)
    # The directories go before `--` (the lab's cli() appends them, which would make them part of the command).
    dirs = ["--config-dir", str(lab_bus.paths.config_dir), "--state-dir", str(lab_bus.paths.state_dir)]
    argv = [sys.executable, "-c", "import sys; from perceus.master.cli.main import main; sys.exit(main())"]
    result = subprocess.run([*argv, *dirs, "node", "exec", "*", "--", "grep", "-c", "^bob:", "/etc/passwd"],
                            capture_output=True, text=True, env=python_env(), timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r": exit 0\n   1\n", result.stdout), result.stdout
