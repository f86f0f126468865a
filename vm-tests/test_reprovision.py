"""Issue 19: `perceus node reprovision` moves a running QEMU node from capsule A to capsule B without a power
cycle: provisiond downloads stage one from perceus-bus (size + SHA-256 checked) and kexecs into it, stage one
enrolls with the key provisiond handed over, fetches B and kexecs into it, and provisiond checks in on B.

No firmware runs again: the QEMU process is the same (the lab starts QEMU with -no-reboot: a reset would end it),
and after the reprovision the serial console shows stage one starting again with no firmware banner.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from perceus.lab import Lab, PxeBoot
from perceus.lab.bus import perceus_cli, start_bus
from perceus.lab.demo import BUS_PORT, NodeProgress, prepare_master
from perceus.master.config import Paths
from perceus.master.power.consolelog import FIRMWARE
from perceus.master.security.audit import audit_path

pytestmark = pytest.mark.vm

CAPSULE_B = "mini2"


def _wait(what: str, ok: Callable[[], bool], timeout: float, node: NodeProgress) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert node.qemu.process.running(), f"QEMU exited while waiting for {what}; console {node.qemu.serial}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s; console {node.qemu.serial}"
        time.sleep(0.5)


def test_a_running_node_moves_to_a_second_capsule_over_kexec_without_firmware(
    vm_host: None, tmp_path: Path, record_time: Callable[[str, float], None]
) -> None:
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    prepare_master(paths, stage1_level=19, progress=print)  # stage one into the TFTP/HTTP root, capsule `mini`
    tftp = paths.tftp
    imported = perceus_cli(paths, "-q", "vnfs", "import", str(tftp / "stage1.cpio.zst"), "--kernel",
                           str(tftp / "vmlinuz"), "--name", CAPSULE_B, timeout=600)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    with Lab(workdir=tmp_path / "lab") as lab:
        bus = start_bus(lab, paths, port=BUS_PORT)
        node = NodeProgress(lab.add_node(PxeBoot(), memory_mb=1024))
        _wait("the first check-in", lambda: (node.scan(), node.done)[1], 300, node)
        record_time("PXE boot to first check-in (capsule A)", node.times["ready"])
        pid = node.qemu.process.pid
        mark = len(node.qemu.serial.lines)

        started = time.monotonic()
        result = bus.cli("-y", "--json", "node", "reprovision", "n0000", "--vnfs", CAPSULE_B, "--ack-timeout", "90",
                         "--timeout", "240", "--no-power-fallback", timeout=300)  # fmt: skip
        record_time("reprovision: instruction to ready on capsule B", time.monotonic() - started)
        after = [line.text for line in node.qemu.serial.lines[mark:]]
        assert result.returncode == 0, f"{result.stderr}\n{result.stdout}\n" + "\n".join(after[-40:])
        rows = json.loads(result.stdout)
        assert [(r["hostname"], r["result"], r["how"], r["vnfs"]) for r in rows] == [
            ("n0000", "ready", "kexec", CAPSULE_B)
        ]

        # The same QEMU process — the lab runs QEMU with -no-reboot, so a guest reset (firmware, POST) would have
        # ended it — no firmware banner since the mark, stage one and then provisiond again.
        assert node.qemu.process.running() and node.qemu.process.pid == pid
        text = "\n".join(after)
        assert not [t for t in after if FIRMWARE.search(t)], "firmware ran again: " + text[-2000:]
        order = ["reprovision_loaded", "agent_starting .*mode=stage1", "session_reentered",
                 f"node_welcomed .*vnfs={CAPSULE_B}", "kexec_started", "agent_starting .*mode=runtime"]  # fmt: skip
        at = 0
        for pattern in order:
            found = next((i for i in range(at, len(after)) if re.search(pattern, after[i])), None)
            assert found is not None, f"no {pattern!r} after the reprovision:\n" + text[-3000:]
            at = found
        shown = perceus_cli(paths, "--json", "node", "show", "n0000")
        assert shown.returncode == 0, shown.stderr
        row = json.loads(shown.stdout)[0]
        assert (row["vnfs"], row["status"], row["phase"]) == (CAPSULE_B, "ready", "runtime")
        audit = audit_path(paths).read_text()
        assert '"session_reentered"' in audit and '"session_replaced"' not in audit
