"""Where the network manager's files live (all under the state dir, site additions under the config dir)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perceus.master.config import Paths

BOOT_SCRIPT = "boot.ipxe"
BIOS_LOADER = "undionly.kpxe"
UEFI_LOADER = "ipxe.efi"
# `uefi loader` choices: iPXE with its own NIC drivers, or iPXE on the firmware's network stack (SNP), which
# starts ~4 s sooner under OVMF (docs/network.md).
UEFI_LOADERS = (UEFI_LOADER, "snponly.efi")
NODES_DIR = "nodes"


@dataclass(frozen=True)
class NetFiles:
    """Generated dnsmasq configuration, hosts files, leases and the TFTP tree."""

    paths: Paths

    @property
    def dir(self) -> Path:
        return self.paths.state_dir / "dnsmasq"

    @property
    def conf(self) -> Path:
        return self.dir / "dnsmasq.conf"

    @property
    def hosts(self) -> Path:
        """dhcp-hostsfile: MAC,IP,hostname per known node (re-read on SIGHUP)."""
        return self.dir / "hosts"

    @property
    def dns_hosts(self) -> Path:
        """addn-hosts: IP name.domain name, so known nodes resolve before their first lease."""
        return self.dir / "dns-hosts"

    @property
    def leases(self) -> Path:
        return self.dir / "leases"

    @property
    def site_dir(self) -> Path:
        """Admin additions (`*.conf`), read after the generated file; never written by Perceus."""
        return self.paths.config_dir / "dnsmasq.d"

    @property
    def pidfile(self) -> Path:
        return self.paths.run / "dnsmasq.pid"

    @property
    def log(self) -> Path:
        return self.paths.logs / "dnsmasq.log"

    @property
    def tftp(self) -> Path:
        return self.paths.tftp

    @property
    def boot_script(self) -> Path:
        return self.tftp / BOOT_SCRIPT

    @property
    def nodes_dir(self) -> Path:
        return self.tftp / NODES_DIR
