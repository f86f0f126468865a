"""The lab's BMC wiring as text: ipmi_sim's lan.conf and a lab node's QEMU line made for a BMC."""

from __future__ import annotations

from pathlib import Path

from perceus.lab.bmc import IPMI_USER, SOL_USER, IpmiSim, as_bmc_node
from perceus.lab.qemu import PxeBoot, qemu_argv


def test_a_bmc_nodes_qemu_line_resets_in_place_and_puts_the_serial_port_on_the_chardev() -> None:
    argv = qemu_argv(name="n", mac="52:54:00:77:00:01", tap="t0", boot=PxeBoot())
    assert "-no-reboot" in argv and argv[argv.index("-serial") + 1] == "stdio"
    made = as_bmc_node(argv, "chardev:ser0")
    assert "-no-reboot" not in made
    assert made[made.index("-serial") + 1] == "chardev:ser0" and made.count("-serial") == 1
    assert [a for a in argv if a not in ("-no-reboot", "stdio")] == [a for a in made if a != "chardev:ser0"]


def test_lan_conf_has_the_vm_codec_sol_and_two_users(tmp_path: Path) -> None:
    sim = IpmiSim(tmp_path, port=9001, vm_port=9002, sol="telnet:127.0.0.1:9003", startcmd="qemu-system-x86_64 -x")
    conf = sim.lan_conf()
    assert "addr 127.0.0.1 9001" in conf and "serial 15 127.0.0.1 9002 codec VM" in conf
    assert 'sol "telnet:127.0.0.1:9003" 115200' in conf and 'startcmd "qemu-system-x86_64 -x"' in conf
    assert f'"{IPMI_USER}"' in conf and f'"{SOL_USER}"' in conf and "startnow false" in conf
