"""Issue 4 (b): with perceus.debug=3 stage one opens a shell on the serial console before provisioning."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from perceus.lab import DirectBoot, Lab, QemuNode, SerialTimeout
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm


def _type_until(node: QemuNode, command: str, expect: str, *, attempts: int = 5) -> None:
    """Type ``command`` until ``expect`` shows up: the shell may not read the console yet."""
    start = len(node.serial.lines)
    for _ in range(attempts):
        node.type_line(command)
        try:
            node.wait_for(expect, 10, start)
            return
        except SerialTimeout:
            continue
    pytest.fail(f"{command!r} never produced {expect!r} on the console")


def test_debug_3_gives_a_shell_and_exit_continues(
    lab: Lab, stage1_image: BuildResult, record_time: Callable[[str, float], None]
) -> None:
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 perceus.debug=3 perceus.master={lab.gateway}:9"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append))
    banner = node.wait_for(r"BEGIN INTERACTIVE SHELL", 150)
    record_time("debug shell opened", banner.t)
    time.sleep(1)
    # $((6*7)) keeps the echoed command line from matching: only the shell's output says 42.
    _type_until(node, "echo shell-$((6*7))", r"^shell-42\s*$")
    node.type_line("exit")
    node.wait_for(r"debug_shell_exited", 30, banner.index)
    # Provisioning continues after the shell: drivers, then DHCP in the lab.
    lease = node.wait_for(r"dhcp_lease iface=eth0", 90, banner.index)
    record_time("DHCP lease after the shell", lease.t)
