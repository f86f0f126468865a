"""QEMU lab harness: a network namespace with a bridge, dnsmasq and TCG nodes (vm-tests and the demo).

Host packages: qemu-system-x86 ipxe-qemu dnsmasq-base iproute2 (and root).
"""

from __future__ import annotations

from perceus.lab.dnsmasq import DnsmasqConfig, ipxe_script
from perceus.lab.lab import Lab, missing_tools
from perceus.lab.netns import LabError, Subnet
from perceus.lab.procs import ManagedProcess
from perceus.lab.qemu import DirectBoot, PxeBoot, QemuNode, node_mac
from perceus.lab.serial import SerialLine, SerialTimeout

__all__ = [
    "DirectBoot",
    "DnsmasqConfig",
    "Lab",
    "LabError",
    "ManagedProcess",
    "PxeBoot",
    "QemuNode",
    "SerialLine",
    "SerialTimeout",
    "Subnet",
    "ipxe_script",
    "missing_tools",
    "node_mac",
]
