"""The lab BMC's LAN configuration as an admin tool reads it: `ipmitool lan print` against a real ipmi_sim
answers the address and MAC the lab gave it (through its lan_config_program), which the vm-test then expects
a QEMU node to read of its own BMC over KCS."""

from __future__ import annotations

import subprocess
from pathlib import Path

from perceus.lab.bmc import IpmiSim, ipmitool_argv


def test_ipmi_sim_reports_the_configured_lan_address(need_ipmi_sim: None, tmp_path: Path) -> None:
    bmc = IpmiSim(tmp_path / "bmc", lan_address="192.0.2.77", lan_mac="02:00:00:00:19:07").start()
    try:
        out = subprocess.run(ipmitool_argv(bmc, "lan", "print", "1"), capture_output=True, text=True, timeout=30)
    finally:
        bmc.stop()
    assert out.returncode == 0, out.stderr
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.stdout.splitlines())}
    assert fields["IP Address"] == "192.0.2.77"
    assert fields["MAC Address"] == "02:00:00:00:19:07"
    assert fields["IP Address Source"] == "Static Address"
