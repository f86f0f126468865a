"""The lab's Redfish bridge (perceus.lab.redfish_bridge: sushy-tools' emulator whose one system is a QEMU
process) driven through `perceus node power` main(argv): on starts QEMU, cycle resets the same process, off ends
it, and a system the bridge does not have is one line.  QEMU runs paused (`-S`, no disk, no NIC): the power
path is under test here, the boot is vm-tests/test_redfish.py's."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.lab.bmc import REDFISH_PASSWORD, ProcessGroup, free_port
from perceus.lab.redfish_node import QMP_SOCKET, bridge_config, bridge_url, start_bridge
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

QEMU = "qemu-system-x86_64"


def run(paths: Paths, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), context=CliContext(paths=paths, stdin=io.StringIO(stdin), stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


class Bridge:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.uuid = str(uuidlib.uuid4())
        self.pidfile = workdir / "qemu.pid"
        argv = [QEMU, "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-m", "64",
                "-qmp", f"unix:{workdir / QMP_SOCKET},server=on,wait=off", "-pidfile", str(self.pidfile)]  # fmt: skip
        conf = workdir / "emulator.conf"
        conf.write_text(
            bridge_config(workdir, port=self.port, argv=argv, uuid=self.uuid, name="vm0", mac="52:54:00:00:09:01")
        )
        self.process: ProcessGroup = start_bridge(conf, workdir, port=self.port)

    def qemu_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            return pid if b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
        except (OSError, ValueError):
            return None


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    if shutil.which(QEMU) is None:
        pytest.skip(f"needs {QEMU}")
    b = Bridge(tmp_path / "bridge")
    yield b
    b.process.stop()


def power(paths: Paths, action: str, *nodes: str) -> dict[str, dict[str, object]]:
    _, out, err = run(paths, "-y", "--json", "node", "power", action, *nodes, "--timeout", "15")
    assert out, err
    return {row["node"]: row for row in json.loads(out)}


def test_power_on_cycle_off_act_on_the_qemu_process(paths: Paths, bridge: Bridge) -> None:
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="52:54:00:00:09:01", hostname="vm0"))
        store.add(NewNode(nodeid="52:54:00:00:09:02", hostname="ghost0"))
    for node, url in (("vm0", bridge_url(bridge.port, bridge.uuid)), ("ghost0", bridge_url(bridge.port, "nope"))):
        assert run(paths, "-y", "node", "set", "bmc", url, node)[0] == 0
        assert run(paths, "-y", "node", "set", "bmc-password", "-", node, stdin=REDFISH_PASSWORD + "\n")[0] == 0

    rows = power(paths, "status", "vm0", "ghost0")
    assert rows["vm0"]["state"] == "off" and bridge.qemu_pid() is None
    assert not rows["ghost0"]["ok"] and "no Redfish system" in str(rows["ghost0"]["error"])

    assert power(paths, "on", "vm0")["vm0"]["state"] == "on"
    deadline = time.monotonic() + 10
    while (pid := bridge.qemu_pid()) is None:
        assert time.monotonic() < deadline, "power on did not start QEMU"
        time.sleep(0.05)
    assert power(paths, "status", "vm0")["vm0"]["state"] == "on"

    # No PowerCycle among sushy-tools' reset types: perceus sends ForceRestart, a QMP system_reset in place.
    assert power(paths, "cycle", "vm0")["vm0"]["state"] == "cycling"
    assert bridge.qemu_pid() == pid
    assert "ForceRestart: running=True" in (bridge.workdir / "bridge.log").read_text()

    assert power(paths, "off", "vm0")["vm0"]["state"] == "off"
    deadline = time.monotonic() + 10
    while bridge.qemu_pid() is not None:
        assert time.monotonic() < deadline, "power off did not end QEMU"
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert power(paths, "status", "vm0")["vm0"]["state"] == "off"
