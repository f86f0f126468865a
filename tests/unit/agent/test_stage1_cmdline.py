"""Stage one's choice of master and the runtime kernel's command line at kexec."""

from __future__ import annotations

from perceus.agent import cmdline
from perceus.agent.cmdline import Master
from perceus.agent.network import Lease
from perceus.agent.stage1 import kexec_cmdline, master_addresses

LEASE = Lease("eth0", "52:54:00:00:00:01", "10.0.0.5", 24, "10.0.0.1", server_id="10.0.0.2", next_server="10.0.0.3")


def test_master_from_cmdline_else_dhcp_server_else_next_server() -> None:
    assert master_addresses(cmdline.parse("perceus.master=m:1"), LEASE) == [Master("m", 1)]
    assert master_addresses(cmdline.parse(""), LEASE) == [Master("10.0.0.2")]
    no_id = Lease("eth0", "x", "10.0.0.5", 24, next_server="10.0.0.3")
    assert master_addresses(cmdline.parse(""), no_id) == [Master("10.0.0.3")]
    assert master_addresses(cmdline.parse(""), None) == []


def test_kexec_cmdline_keeps_capsule_args_adds_consoles_and_handover() -> None:
    config = cmdline.parse("console=tty0 console=ttyS0,115200 perceus.debug=2")
    line = kexec_cmdline("root=/dev/ram0 quiet perceus.mode=stage1 masterip=1.2.3.4", config,
                         "52:54:00:00:00:01", LEASE, Master("10.0.0.2"))  # fmt: skip
    words = line.split()
    assert words[:2] == ["root=/dev/ram0", "quiet"]
    assert "console=tty0" in words and "console=ttyS0,115200" in words
    runtime = cmdline.parse(line)
    assert runtime.mode is cmdline.Mode.RUNTIME and runtime.node == "52:54:00:00:00:01"
    assert runtime.masters == (Master("10.0.0.2"),)
    assert str(runtime.net) == "10.0.0.5/24,10.0.0.1,eth0"
    assert "masterip=1.2.3.4" not in words and "perceus.mode=stage1" not in words


def test_capsule_console_wins() -> None:
    line = kexec_cmdline("console=ttyS1", cmdline.parse("console=tty0"), "52:54:00:00:00:01", None, None)
    assert "console=ttyS1" in line.split() and "console=tty0" not in line.split()
