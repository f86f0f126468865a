"""dnsmasq for a lab bridge: DHCPv4, IPv6 router advertisements, optional TFTP for PXE."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perceus.lab.netns import Subnet


@dataclass(frozen=True)
class DnsmasqConfig:
    """What the lab's dnsmasq serves; ``argv()`` is the whole configuration (no config file)."""

    interface: str
    subnet: Subnet
    state_dir: Path
    lease_time: str = "1h"
    tftp_root: Path | None = None
    boot_file: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)

    @property
    def leasefile(self) -> Path:
        return self.state_dir / "dnsmasq.leases"

    @property
    def logfile(self) -> Path:
        return self.state_dir / "dnsmasq.log"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "dnsmasq.pid"

    def argv(self, binary: str = "dnsmasq") -> list[str]:
        start, end = self.subnet.dhcp_range
        args = [
            binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # ignore /etc/dnsmasq.conf and friends
            "--port=0",  # DHCP/TFTP only: no DNS server
            f"--interface={self.interface}",
            "--bind-interfaces",
            "--no-ping",  # dnsmasq otherwise pings each new address first: ~3 s per node's DHCP
            "--user=root",  # files live in the lab's root-owned work dir
            f"--dhcp-range={start},{end},255.255.255.0,{self.lease_time}",
            f"--dhcp-option=option:router,{self.subnet.gateway}",
            # Answer iPXE's router solicitations, or it stalls 12-16 s per boot.
            "--enable-ra",
            f"--dhcp-range={self.subnet.ipv6_prefix},ra-only",
            f"--dhcp-leasefile={self.leasefile}",
            "--log-dhcp",
            f"--log-facility={self.logfile}",
            f"--pid-file={self.pidfile}",
        ]
        if self.tftp_root is not None:
            args += ["--enable-tftp", f"--tftp-root={self.tftp_root}"]
        if self.boot_file is not None:
            args.append(f"--dhcp-boot={self.boot_file}")
        return args + list(self.extra)


def ipxe_script(kernel: str, initrd: str, append: str) -> str:
    """A boot.ipxe that fetches kernel and initrd over TFTP from the DHCP server."""
    return f"#!ipxe\nkernel tftp://${{next-server}}/{kernel} {append}\ninitrd tftp://${{next-server}}/{initrd}\nboot\n"
